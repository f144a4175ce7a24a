/* pii.c — sealing, lookup hashing and masking of personal data. */
#include "pii.h"
#include "store.h"
#include "util.h"
#include "validate.h"

#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static bool key_from_hex(const char *hex, unsigned char out[32])
{
    size_t n = 0;
    return strlen(hex) == 64 && sodium_hex2bin(out, 32, hex, 64, NULL, &n, NULL) == 0 && n == 32;
}

static bool read_key_file(const char *path, unsigned char key[32], char *err, size_t errlen)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        snprintf(err, errlen, "cannot read data key %s: %s", path, strerror(errno));
        return false;
    }
    struct stat st;
    if (fstat(fd, &st) == 0 && (st.st_mode & 077)) {
        close(fd);
        snprintf(err, errlen, "data key %s is readable by group or others; chmod 600 it", path);
        return false;
    }
    char buf[80];
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n == 32) {
        memcpy(key, buf, 32);
        return true;
    }
    if (n >= 64) {
        buf[n] = '\0';
        buf[strcspn(buf, "\r\n")] = '\0';
        if (key_from_hex(buf, key))
            return true;
    }
    snprintf(err, errlen, "data key %s must hold 32 bytes or 64 hex digits", path);
    return false;
}

bool sy_pii_load(const char *data_dir, const char *key_file, bool demo, sy_pii_keys *out, char *err,
                 size_t errlen)
{
    unsigned char key[32];
    const char *env = getenv("SIYU_DATA_KEY");
    if (env && *env) {
        if (!key_from_hex(env, key)) {
            snprintf(err, errlen, "SIYU_DATA_KEY must be 64 hex digits");
            return false;
        }
    } else if (key_file && *key_file) {
        if (!read_key_file(key_file, key, err, errlen))
            return false;
    } else if (demo) {
        char path[4096];
        snprintf(path, sizeof path, "%s/data.key", data_dir);
        if (access(path, F_OK) != 0) {
            randombytes_buf(key, sizeof key);
            int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
            if (fd < 0 || !sy_write_all(fd, key, sizeof key) || fsync(fd) != 0) {
                snprintf(err, errlen, "cannot create %s: %s", path, strerror(errno));
                if (fd >= 0)
                    close(fd);
                return false;
            }
            close(fd);
            sy_info("demo: created data key %s (mode 0600)", path);
        } else if (!read_key_file(path, key, err, errlen)) {
            return false;
        }
    } else {
        snprintf(err, errlen,
                 "no data key: personal data is encrypted with a key you provide; set "
                 "SIYU_DATA_KEY (64 hex digits) or --data-key-file FILE "
                 "(e.g. head -c 32 /dev/urandom > FILE; chmod 600 FILE)");
        return false;
    }
    crypto_kdf_derive_from_key(out->enc, sizeof out->enc, 1, "siyu-pii", key);
    crypto_kdf_derive_from_key(out->lookup, sizeof out->lookup, 2, "siyu-pii", key);
    sodium_memzero(key, sizeof key);
    return true;
}

static size_t make_ad(const char *tenant, const char *customer_no, unsigned char *ad, size_t n)
{
    int len = snprintf((char *)ad, n, "%s%c%s", tenant, '\0', customer_no);
    return len > 0 && (size_t)len < n ? (size_t)len : 0;
}

char *sy_pii_seal(const sy_pii_keys *k, const char *tenant, const char *customer_no,
                  const json_t *pii)
{
    char *plain = json_dumps(pii, JSON_COMPACT);
    if (!plain)
        return NULL;
    size_t plen = strlen(plain);
    unsigned char ad[256];
    size_t adlen = make_ad(tenant, customer_no, ad, sizeof ad);
    size_t clen = crypto_aead_xchacha20poly1305_ietf_NPUBBYTES + plen +
                  crypto_aead_xchacha20poly1305_ietf_ABYTES;
    unsigned char *box = sy_xmalloc(clen);
    randombytes_buf(box, crypto_aead_xchacha20poly1305_ietf_NPUBBYTES);
    unsigned long long written = 0;
    crypto_aead_xchacha20poly1305_ietf_encrypt(box + crypto_aead_xchacha20poly1305_ietf_NPUBBYTES,
                                               &written, (unsigned char *)plain, plen, ad, adlen,
                                               NULL, box, k->enc);
    sodium_memzero(plain, plen);
    free(plain);
    size_t b64len = sodium_base64_ENCODED_LEN(clen, sodium_base64_VARIANT_ORIGINAL);
    char *b64 = sy_xmalloc(b64len);
    sodium_bin2base64(b64, b64len, box, clen, sodium_base64_VARIANT_ORIGINAL);
    free(box);
    return b64;
}

json_t *sy_pii_open(const sy_pii_keys *k, const char *tenant, const char *customer_no,
                    const char *sealed)
{
    size_t slen = strlen(sealed);
    unsigned char *box = sy_xmalloc(slen + 1);
    size_t blen = 0;
    json_t *out = NULL;
    if (sodium_base642bin(box, slen, sealed, slen, NULL, &blen, NULL,
                          sodium_base64_VARIANT_ORIGINAL) != 0 ||
        blen < crypto_aead_xchacha20poly1305_ietf_NPUBBYTES +
                   crypto_aead_xchacha20poly1305_ietf_ABYTES) {
        free(box);
        return NULL;
    }
    unsigned char ad[256];
    size_t adlen = make_ad(tenant, customer_no, ad, sizeof ad);
    size_t mlen = blen - crypto_aead_xchacha20poly1305_ietf_NPUBBYTES -
                  crypto_aead_xchacha20poly1305_ietf_ABYTES;
    unsigned char *plain = sy_xmalloc(mlen + 1);
    unsigned long long got = 0;
    if (crypto_aead_xchacha20poly1305_ietf_decrypt(
            plain, &got, NULL, box + crypto_aead_xchacha20poly1305_ietf_NPUBBYTES,
            blen - crypto_aead_xchacha20poly1305_ietf_NPUBBYTES, ad, adlen, box, k->enc) == 0) {
        out = json_loadb((const char *)plain, (size_t)got, 0, NULL);
        sodium_memzero(plain, (size_t)got);
    }
    free(plain);
    free(box);
    return json_is_object(out) ? out : (json_decref(out), NULL);
}

bool sy_phone_normalize(const char *in, char *out, size_t n)
{
    char digits[32];
    size_t d = 0;
    for (const char *p = in; *p; p++) {
        if (*p >= '0' && *p <= '9') {
            if (d >= sizeof digits - 1)
                return false;
            digits[d++] = *p;
        } else if (!(*p == ' ' || *p == '-' || (*p == '+' && p == in) || *p == '(' || *p == ')')) {
            return false;
        }
    }
    digits[d] = '\0';
    const char *s = digits;
    /* +86 / 0086 before a mainland 11-digit number */
    if (d == 13 && !strncmp(s, "86", 2))
        s += 2;
    else if (d == 15 && !strncmp(s, "0086", 4))
        s += 4;
    size_t len = strlen(s);
    if (len < 6 || len > 20 || len >= n)
        return false;
    memcpy(out, s, len + 1);
    return true;
}

void sy_phone_key(const sy_pii_keys *k, const char *tenant, const char *phone, char out[65])
{
    crypto_generichash_state st;
    unsigned char h[32];
    crypto_generichash_init(&st, k->lookup, sizeof k->lookup, sizeof h);
    crypto_generichash_update(&st, (const unsigned char *)tenant, strlen(tenant) + 1);
    crypto_generichash_update(&st, (const unsigned char *)phone, strlen(phone));
    crypto_generichash_final(&st, h, sizeof h);
    sy_hex(h, sizeof h, out);
}

void sy_mask_phone(const char *phone, char *out, size_t n)
{
    size_t len = strlen(phone);
    bool ascii = true;
    for (size_t i = 0; i < len; i++)
        ascii &= (unsigned char)phone[i] < 0x80;
    /* a phone written freely (a delivery's) may hold other characters:
     * cutting bytes there would cut characters */
    if (len < 7 || !ascii) {
        snprintf(out, n, "****");
        return;
    }
    snprintf(out, n, "%.3s****%s", phone, phone + len - 4);
}

/* The length in bytes of the UTF-8 character starting at s. */
static size_t utf8_char_len(const char *s)
{
    unsigned char c = (unsigned char)*s;
    size_t len = c < 0x80 ? 1 : c < 0xe0 ? 2 : c < 0xf0 ? 3 : 4;
    for (size_t i = 1; i < len; i++)
        if (!s[i])
            return i;
    return len;
}

void sy_mask_name(const char *name, char *out, size_t n)
{
    /* Keep the first character (the family name), star the rest. */
    size_t first = *name ? utf8_char_len(name) : 0;
    size_t rest = sy_utf8_len(name + first);
    size_t o = 0;
    for (size_t i = 0; i < first && o + 1 < n; i++)
        out[o++] = name[i];
    for (size_t i = 0; i < (rest ? rest : 1) && o + 1 < n; i++)
        out[o++] = '*';
    out[o] = '\0';
}

void sy_mask_address(const char *address, char *out, size_t n)
{
    /* The first characters (the province or city): six at most, and at
     * most half of them, so that a short address is never shown whole;
     * then stars. */
    size_t chars = sy_utf8_len(address), keep = chars / 2 < 6 ? chars / 2 : 6;
    size_t o = 0;
    const char *p = address;
    for (size_t k = 0; k < keep && *p; k++) {
        size_t len = utf8_char_len(p);
        if (o + len + 5 > n)
            break;
        memcpy(out + o, p, len);
        o += len;
        p += len;
    }
    if (o + 5 <= n) {
        memcpy(out + o, "****", 5);
    } else if (n) {
        out[0] = '\0';
    }
}

void sy_mask_id_number(const char *id, char *out, size_t n)
{
    size_t len = strlen(id);
    if (len < 10) {
        snprintf(out, n, "****");
        return;
    }
    size_t o = 0;
    for (size_t i = 0; i < len && o + 1 < n; i++)
        out[o++] = (i < 4 || i >= len - 4) ? id[i] : '*';
    out[o] = '\0';
}

json_t *sy_pii_masked(const json_t *pii)
{
    json_t *m = json_object();
    char buf[512];
    const char *key;
    json_t *v;
    json_object_foreach ((json_t *)pii, key, v) {
        const char *s = json_string_value(v);
        if (!s)
            continue;
        if (!strcmp(key, "phone"))
            sy_mask_phone(s, buf, sizeof buf);
        else if (!strcmp(key, "name"))
            sy_mask_name(s, buf, sizeof buf);
        else if (!strcmp(key, "id_number"))
            sy_mask_id_number(s, buf, sizeof buf);
        else if (!strcmp(key, "address"))
            sy_mask_address(s, buf, sizeof buf);
        else
            snprintf(buf, sizeof buf, "****");
        json_object_set_new(m, key, json_string(buf));
    }
    return m;
}

/* ---- the store's data key check ---- */

static void key_check(const sy_pii_keys *k, char out[65])
{
    static const char what[] = "siyu data key check v1";
    unsigned char h[32];
    crypto_generichash(h, sizeof h, (const unsigned char *)what, sizeof what - 1, k->enc,
                       sizeof k->enc);
    sy_hex(h, sizeof h, out);
}

bool sy_pii_check_store(sy_conn *c, const sy_pii_keys *k, char *err, size_t errlen)
{
    static const char sql_get[] = "SELECT value FROM store_settings WHERE name = 'data_key_check'";
    static const char sql_sample[] =
        "SELECT tenant_id, customer_no, pii FROM customers WHERE pii IS NOT NULL LIMIT 1";
    static const char sql_put[] = "INSERT INTO store_settings (name, value, updated_at)"
                                  " VALUES ('data_key_check', $1, $2)";
    static const char wrong[] =
        "the data key is not the one this store's personal data is sealed with;"
        " give the store's own key (SIYU_DATA_KEY or --data-key-file)";
    char want[65];
    key_check(k, want);
    sy_stmt *st = sy_conn_prepare(c, sql_get);
    if (!st)
        goto store_error;
    int rc = sy_stmt_step(st);
    bool have = rc == SY_ROW, same = have && !strcmp(sy_stmt_text(st, 0), want);
    sy_stmt_reset(st);
    if (rc != SY_ROW && rc != SY_DONE)
        goto store_error;
    if (have) {
        if (!same)
            snprintf(err, errlen, "%s", wrong);
        return same;
    }
    /* No check value yet (a new store, or one from before 0013): a sealed
     * customer, if there is one, says whether the key is right. */
    if (!(st = sy_conn_prepare(c, sql_sample)))
        goto store_error;
    rc = sy_stmt_step(st);
    bool opens = true;
    if (rc == SY_ROW) {
        json_t *o = sy_pii_open(k, sy_stmt_text(st, 0), sy_stmt_text(st, 1), sy_stmt_text(st, 2));
        opens = o != NULL;
        json_decref(o);
    }
    sy_stmt_reset(st);
    if (rc != SY_ROW && rc != SY_DONE)
        goto store_error;
    if (!opens) {
        snprintf(err, errlen, "%s", wrong);
        return false;
    }
    if (!(st = sy_conn_prepare(c, sql_put)))
        goto store_error;
    sy_stmt_bind_text(st, 1, want);
    sy_stmt_bind_i64(st, 2, sy_now_ms());
    if (sy_stmt_exec(st) == SY_OK)
        return true;
store_error:
    snprintf(err, errlen, "checking the data key: %s", sy_conn_errmsg(c));
    return false;
}
