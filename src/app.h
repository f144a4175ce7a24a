/* app.h — the process-wide context handlers reach through sy_req_app(). */
#ifndef SY_APP_H
#define SY_APP_H

#include "attr.h"
#include "auth.h"
#include "config.h"
#include "index.h"
#include "pii.h"
#include "store.h"
#include "tenant.h"
#include "writer.h"

struct sy_app {
    const sy_config *cfg;
    sy_store *store;
    sy_writer *writer;
    sy_keys *keys;
    sy_tenants *tenants;
    sy_schemas *schemas;
    const sy_pii_keys *pii;
    sy_indexes *indexes;
};

#endif
