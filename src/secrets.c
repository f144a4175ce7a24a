/* secrets.c — loading, creating and deriving from the master secret. */
#include "secrets.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

bool sy_secret_load(const char *data_dir, bool create, unsigned char master[32], char *err,
                    size_t errlen)
{
    const char *env = getenv("SIYU_MASTER_KEY");
    if (env && *env) {
        size_t bin_len = 0;
        if (strlen(env) != 64 || sodium_hex2bin(master, 32, env, 64, NULL, &bin_len, NULL) != 0 ||
            bin_len != 32) {
            snprintf(err, errlen, "SIYU_MASTER_KEY must be 64 hex digits");
            return false;
        }
        return true;
    }
    char path[4096];
    snprintf(path, sizeof path, "%s/master.key", data_dir);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0 && errno == ENOENT && create) {
        randombytes_buf(master, 32);
        char tmp[4200];
        snprintf(tmp, sizeof tmp, "%s.tmp", path);
        int w = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        if (w < 0 || !sy_write_all(w, master, 32) || fsync(w) != 0) {
            snprintf(err, errlen, "cannot write %s: %s", tmp, strerror(errno));
            if (w >= 0)
                close(w);
            return false;
        }
        close(w);
        if (rename(tmp, path) != 0) {
            snprintf(err, errlen, "cannot create %s: %s", path, strerror(errno));
            return false;
        }
        sy_info("created master secret %s (mode 0600): back it up with the database", path);
        return true;
    }
    if (fd < 0) {
        snprintf(err, errlen,
                 "cannot read master secret %s: %s (set SIYU_MASTER_KEY or restore the file)", path,
                 strerror(errno));
        return false;
    }
    struct stat st;
    if (fstat(fd, &st) == 0 && (st.st_mode & 077)) {
        close(fd);
        snprintf(err, errlen, "%s is readable by group or others; chmod 600 it", path);
        return false;
    }
    ssize_t n = read(fd, master, 32);
    close(fd);
    if (n != 32) {
        snprintf(err, errlen, "%s must hold exactly 32 bytes", path);
        return false;
    }
    return true;
}

void sy_secret_derive(const unsigned char master[32], int id, unsigned char out[32])
{
    crypto_kdf_derive_from_key(out, 32, (uint64_t)id, "siyu-kdf", master);
}
