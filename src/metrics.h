/* metrics.h — process-wide counters and histograms, rendered in the
 * Prometheus text exposition format by GET /metrics.
 *
 * Every update is a relaxed atomic add: request threads and the writer
 * record without taking a lock. */
#ifndef SY_METRICS_H
#define SY_METRICS_H

#include "util.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Registers the route labels (e.g. "GET /v1/keys/{id}").  Route index
 * nroutes is used for requests that matched no route.  Call once before
 * serving; the strings must outlive the process's serving phase. */
void sy_metrics_init(const char *const *route_labels, int nroutes);
void sy_metrics_request(int route, int status, uint64_t latency_ns);
/* A group commit: its size, the time to run and commit the whole batch, and
 * of that the COMMIT statement alone (writing the pages to the WAL, and with
 * the syncer off, the fsync too). */
void sy_metrics_commit(size_t batch, uint64_t latency_ns, uint64_t commit_ns, bool ok);
/* A batch run again with a savepoint per mutation (writer.h). */
void sy_metrics_writer_rerun(void);
/* One fdatasync of the WAL by the writer's syncer. */
void sy_metrics_fsync(uint64_t latency_ns);
void sy_metrics_connections(int delta);
void sy_metrics_in_flight(int delta);
void sy_metrics_awaiting_commit(int delta);
int64_t sy_metrics_in_flight_now(void);
void sy_metrics_render(sy_buf *out);
void sy_metrics_free(void);

#endif
