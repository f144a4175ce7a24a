/* api.h — the handlers, one file per resource (api_*.c). */
#ifndef SY_API_H
#define SY_API_H

#include "server.h"

/* api_ops.c: operations endpoints, no key needed */
void sy_api_healthz(sy_req *r);
void sy_api_readyz(sy_req *r);
void sy_api_metrics(sy_req *r);

/* api_tenant.c */
void sy_api_tenant_get(sy_req *r);
void sy_api_tenant_patch(sy_req *r);

/* api_keys.c */
void sy_api_keys_create(sy_req *r);
void sy_api_keys_list(sy_req *r);
void sy_api_keys_get(sy_req *r);
void sy_api_keys_revoke(sy_req *r);

/* api_attributes.c */
void sy_api_attributes_list(sy_req *r);
void sy_api_attributes_get(sy_req *r);
void sy_api_attributes_create(sy_req *r);
void sy_api_attributes_patch(sy_req *r);

/* api_customers.c */
void sy_api_customers_put(sy_req *r);
void sy_api_customers_get(sy_req *r);
void sy_api_identities_get(sy_req *r);

/* api_events.c */
void sy_api_events_post(sy_req *r);
void sy_api_customer_events(sy_req *r);

/* api_segments.c */
void sy_api_segments_preview(sy_req *r);

/* api_audit.c */
void sy_api_audit_list(sy_req *r);

/* Replies 500 for a store failure on a read path and logs the cause. */
void sy_api_store_error(sy_req *r, sy_conn *c);

#endif
