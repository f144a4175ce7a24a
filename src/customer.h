/* customer.h — customer records: validation of an upsert, the stored row,
 * and the 360° view. */
#ifndef SY_CUSTOMER_H
#define SY_CUSTOMER_H

#include "attr.h"
#include "pii.h"
#include "store.h"

#include <jansson.h>
#include <stdbool.h>

#define SY_CUSTOMER_NO_MAX 64
#define SY_IDENTITY_VALUE_MAX 128

/* 1-64 characters of [A-Za-z0-9_.:-]. */
bool sy_customer_no_valid(const char *no);
/* app_user_id, wechat_openid, wechat_unionid, wecom_external_userid, phone */
bool sy_identity_type_valid(const char *type);
/* A mainland resident ID number: 18 characters with a valid check digit
 * (GB 11643), or the old 15-digit form. */
bool sy_id_number_valid(const char *id);

/* The store key of an identity value: the value itself, or for phones the
 * keyed hash of the normalised number.  False when the value is invalid. */
bool sy_identity_key(const sy_pii_keys *k, const char *tenant, const char *type, const char *value,
                     char *out, size_t n);

/* Packed attributes (migration 0007): the customer_packed row of every
 * customer not merged into another holds its attributes as sy_attr_pack
 * writes them, for the index to read at start.  The functions below run
 * inside the caller's write transaction, beside the write of
 * customers.attrs they mirror. */

/* The attributes whose history is kept (attr_history, migration 0014). */
#define SY_HISTORY_ATTRS                                                                           \
    {                                                                                              \
        "aum"                                                                                      \
    }

/* Records, for each history attribute whose value differs between
 * old_attrs (NULL: a new customer) and new_attrs, its new value (NULL when
 * unset) at time `at`, in the caller's transaction. */
int sy_customer_history_put(sy_conn *c, const char *tenant, const char *no, const json_t *old_attrs,
                            const json_t *new_attrs, int64_t at);

/* Writes (inserts or replaces) the packed row of customer `no`, dense id
 * `dense`, whose canonical attributes are `attrs`.  schema may be NULL or
 * stale: when it lacks one of the attributes, the tenant's schema is read
 * again on c. */
int sy_customer_packed_put(sy_conn *c, const sy_attr_set *schema, const char *tenant,
                           const char *no, int64_t dense, const json_t *attrs);
/* Removes the packed row of the customer with dense id `dense` (merged
 * into another). */
int sy_customer_packed_drop(sy_conn *c, const char *tenant, int64_t dense);
/* Packs the attributes of every tenant in packing_backlog (customers
 * written before migration 0007), in transactions of a few thousand
 * customers on the store's write connection, and empties the backlog.
 * Called once at start, before the writer thread and the indexes.
 * *packed counts the customers packed.  Returns SY_OK or a store error. */
int sy_customers_pack_backlog(sy_store *s, int64_t *packed);

/* For siyu check (check.h): every customer not merged into another has a
 * packed row holding exactly sy_attr_pack of its attributes under its
 * number, and there is no other packed row.  Reports each violation. */
int sy_customers_check_packed(sy_conn *c, const char *tenant,
                              void (*report)(void *ud, const char *line), void *ud,
                              int64_t *violations, int64_t *checked);

#endif
