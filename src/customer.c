/* customer.c — validation helpers for customer records and identities. */
#include "customer.h"
#include "util.h"

#include <stdio.h>
#include <string.h>

bool sy_customer_no_valid(const char *no)
{
    size_t n = strlen(no);
    if (n < 1 || n > SY_CUSTOMER_NO_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = no[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '.' || c == ':' || c == '-'))
            return false;
    }
    return true;
}

static const char *const k_identity_types[] = {"app_user_id", "wechat_openid", "wechat_unionid",
                                               "wecom_external_userid", "phone"};

bool sy_identity_type_valid(const char *type)
{
    for (size_t i = 0; i < SY_ARRAY_LEN(k_identity_types); i++)
        if (!strcmp(type, k_identity_types[i]))
            return true;
    return false;
}

bool sy_id_number_valid(const char *id)
{
    size_t n = strlen(id);
    if (n == 15) {
        for (size_t i = 0; i < 15; i++)
            if (id[i] < '0' || id[i] > '9')
                return false;
        return true;
    }
    if (n != 18)
        return false;
    static const int weight[17] = {7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2};
    static const char check[11] = {'1', '0', 'X', '9', '8', '7', '6', '5', '4', '3', '2'};
    int sum = 0;
    for (int i = 0; i < 17; i++) {
        if (id[i] < '0' || id[i] > '9')
            return false;
        sum += (id[i] - '0') * weight[i];
    }
    char last = id[17] == 'x' ? 'X' : id[17];
    return last == check[sum % 11];
}

bool sy_identity_key(const sy_pii_keys *k, const char *tenant, const char *type, const char *value,
                     char *out, size_t n)
{
    if (!strcmp(type, "phone")) {
        char phone[32];
        if (n < 65 || !sy_phone_normalize(value, phone, sizeof phone))
            return false;
        sy_phone_key(k, tenant, phone, out);
        return true;
    }
    size_t len = strlen(value);
    if (len < 1 || len > SY_IDENTITY_VALUE_MAX || len >= n)
        return false;
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)value[i] <= 0x20 || value[i] == 0x7f)
            return false;
    memcpy(out, value, len + 1);
    return true;
}
