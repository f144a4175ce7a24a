/* pii.h — protection of customers' personal data (name, phone, ID number).
 *
 * The data key (32 bytes) comes from SIYU_DATA_KEY (64 hex digits) or a key
 * file (--data-key-file, mode 0600); `siyu serve` refuses to start without
 * one, except with --demo, which creates DATA/data.key for a demo bank.
 * Two keys are derived from it: one encrypts each customer's personal data
 * as a single XChaCha20-Poly1305 message whose associated data is the tenant
 * and customer number (so a ciphertext cannot be moved to another row), the
 * other computes the keyed hash under which phone numbers are looked up.
 * No personal datum is ever stored in clear text.
 *
 * Responses mask personal data (138****1234, 张**, 1101**********1234);
 * the clear text is returned only when an admin or compliance key asks for
 * it, and every such read is audited (api_customers.c). */
#ifndef SY_PII_H
#define SY_PII_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

typedef struct sy_pii_keys {
    unsigned char enc[32];    /* XChaCha20-Poly1305 */
    unsigned char lookup[32]; /* BLAKE2b key for phone lookups */
} sy_pii_keys;

/* Loads the data key: SIYU_DATA_KEY, else key_file (when not NULL), else
 * DATA/data.key when demo is set (created if missing).  Returns false with
 * a message when there is none or it is malformed. */
bool sy_pii_load(const char *data_dir, const char *key_file, bool demo, sy_pii_keys *out, char *err,
                 size_t errlen);

/* Checks that k is the data key this store's personal data is sealed with:
 * against the check value kept in store_settings, or — for a store that has
 * none yet — by opening one customer's sealed data, and then records the
 * check value.  Returns false with a message when the key is another one or
 * the store cannot be read. */
struct sy_conn;
bool sy_pii_check_store(struct sy_conn *c, const sy_pii_keys *k, char *err, size_t errlen);

/* Encrypts a JSON object of personal data; returns base64 text (malloc'd). */
char *sy_pii_seal(const sy_pii_keys *k, const char *tenant, const char *customer_no,
                  const json_t *pii);
/* Decrypts; NULL when the text was not sealed for this tenant and customer
 * under this key (tampering, a wrong key). */
json_t *sy_pii_open(const sy_pii_keys *k, const char *tenant, const char *customer_no,
                    const char *sealed);

/* Normalises a phone number to its digits (a leading +86 or 0086 is
 * dropped for mainland numbers).  False if it is not 6-20 digits. */
bool sy_phone_normalize(const char *in, char *out, size_t n);
/* Keyed hash of a normalised phone number within a tenant, 64 hex digits. */
void sy_phone_key(const sy_pii_keys *k, const char *tenant, const char *phone, char out[65]);

/* Masked forms for responses. */
void sy_mask_phone(const char *phone, char *out, size_t n);
void sy_mask_name(const char *name, char *out, size_t n);
void sy_mask_id_number(const char *id, char *out, size_t n);
/* An address's first characters (at most six, and at most half of them),
 * then "****"; a phone that is not ASCII is "****". */
void sy_mask_address(const char *address, char *out, size_t n);
/* A copy of a personal-data object with every member masked. */
json_t *sy_pii_masked(const json_t *pii);

#endif
