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

#endif
