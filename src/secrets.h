/* secrets.h — the installation's master secret and the keys derived from it.
 *
 * The master secret is 32 random bytes.  It comes from SIYU_MASTER_KEY (64
 * hex digits) or from DATA/master.key (mode 0600), which the first start
 * creates.  Purpose-specific keys are derived with libsodium's KDF, so the
 * master secret itself is never used directly. */
#ifndef SY_SECRETS_H
#define SY_SECRETS_H

#include <stdbool.h>
#include <stddef.h>

#define SY_SUBKEY_API_KEYS 1 /* keyed hash of API keys */

/* Loads the master secret; creates the key file when create is true and
 * no secret exists.  Returns false with a message in err. */
bool sy_secret_load(const char *data_dir, bool create, unsigned char master[32], char *err,
                    size_t errlen);
void sy_secret_derive(const unsigned char master[32], int id, unsigned char out[32]);

#endif
