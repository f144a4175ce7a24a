/* test_e2e_docs.c — the walk-throughs of docs/campaigns.md run as written.
 *
 * A reader is told to run the page's ```sh blocks, in order, in one shell,
 * against `make run`'s demo bank.  This test does exactly that against a
 * small demo bank (`siyu demo`), with `U` pointing at the test server and
 * `K` set to an admin key (the page's `K=sy_…` line is the one it skips);
 * `./siyu` and `data` are the test binary and the demo's data directory, as
 * in the repository after `make run`.  The text is run unchanged: the pages
 * compute their dates with `date` (campaigns around today, reports of this
 * month).  The script runs under `set -e`: a command that
 * fails (a pipeline whose grep finds nothing, a connection refused) fails
 * the test; then the state the walk-through describes is checked in the
 * store. */
#include "e2e/harness.h"

#include <limits.h>

static h_server *S;

/* The page's ```sh blocks, concatenated, without the `K=sy_…` (or
 * `KEY=sy_…`) line, the admin key make run printed. */
static char *sh_blocks(const char *page)
{
    size_t cap = strlen(page) + 1, len = 0;
    char *out = malloc(cap);
    assert_non_null(out);
    out[0] = '\0';
    bool in = false;
    for (const char *line = page; *line;) {
        const char *end = strchr(line, '\n');
        size_t n = end ? (size_t)(end - line) : strlen(line);
        if (!in && n >= 5 && !strncmp(line, "```sh", 5)) {
            in = true;
        } else if (in && n >= 3 && !strncmp(line, "```", 3)) {
            in = false;
        } else if (in && strncmp(line, "K=sy_", 5) != 0 && strncmp(line, "KEY=sy_", 7) != 0) {
            memcpy(out + len, line, n);
            len += n;
            out[len++] = '\n';
            out[len] = '\0';
        }
        line = end ? end + 1 : line + n;
    }
    return out;
}

/* Starts a server on a fresh small demo bank. */
static void start_demo(void)
{
    setenv("SIYU_DATA_KEY", H_DATA_KEY, 1);
    S = calloc(1, sizeof *S);
    S->dir = tu_tempdir();
    snprintf(S->data, sizeof S->data, "%s/data", S->dir);
    char cmd[2048];
    snprintf(cmd, sizeof cmd,
             "'%s' demo --data '%s' --tenant demo --customers 3000 --days 2 >'%s/demo.log' 2>&1",
             h_bin(), S->data, S->dir);
    if (system(cmd) != 0)
        fail_msg("siyu demo failed (see %s/demo.log)", S->dir);
    h_launch(S);
}

/* Runs docs/NAME's sh blocks in one shell (K and KEY an admin key, U the
 * server) and returns what they printed (malloc'd); fails the test if the
 * script stops. */
static char *run_page(const char *name)
{
    const char *src = getenv("SIYU_SRC");
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/docs/%s", src ? src : ".", name);
    char *page = h_read_file(path);
    if (!page)
        fail_msg("cannot read %s", path);
    char *script = sh_blocks(page);
    free(page);

    /* as after `make run`: ./siyu and data/ in the working directory */
    char *key = NULL;
    assert_int_equal(h_cli(S, &key, "key create --tenant demo --role admin --name docs"), 0);
    char k[128];
    assert_int_equal(sscanf(key, "%127s", k), 1);
    free(key);
    char bin[PATH_MAX], link[PATH_MAX + 16];
    assert_non_null(realpath(h_bin(), bin));
    snprintf(link, sizeof link, "%s/siyu", S->dir);
    assert_int_equal(symlink(bin, link), 0);
    char file[PATH_MAX + 16];
    snprintf(file, sizeof file, "%s/walk.sh", S->dir);
    FILE *f = fopen(file, "w");
    assert_non_null(f);
    /* rewards.md's U is a URL, campaigns.md's host:port: curl takes both */
    fprintf(f, "set -e\ncd '%s'\nU=127.0.0.1:%d\nK=%s\nKEY=%s\n%s", S->dir, S->port, k, k, script);
    fclose(f);
    free(script);

    char cmd[3 * PATH_MAX];
    snprintf(cmd, sizeof cmd, "bash '%s/walk.sh' >'%s/walk.out' 2>&1", S->dir, S->dir);
    int rc = system(cmd);
    snprintf(file, sizeof file, "%s/walk.out", S->dir);
    char *out = h_read_file(file);
    if (rc != 0) {
        snprintf(file, sizeof file, "%s/stderr.log", S->dir);
        char *log = h_read_file(file);
        fail_msg("docs/%s stopped (%d) at port %d:\n%s\nserver log:\n%s", name, rc, S->port,
                 out ? out : "", log ? log : "");
    }
    assert_non_null(out);
    /* curl -s does not fail on an HTTP error: no answer may be a 5xx */
    if (strstr(out, "\"status\":5") || strstr(out, "\"type\":\"internal\""))
        fail_msg("docs/%s got a server error:\n%s", name, out);
    return out;
}

static void test_campaigns_walkthrough(void **state)
{
    (void)state;
    char *out = run_page("campaigns.md");
    /* the refusals it shows on purpose */
    assert_non_null(strstr(out, "\"maker-checker\""));
    assert_non_null(strstr(out, "\"self-invite\""));
    assert_non_null(strstr(out, "\"blocked\""));
    free(out);
    /* the page's customers are C00000012 to C00000016: it leaves rewards.md's
     * C00000001 alone */
    assert_int_equal(h_sql_long(S, "SELECT COUNT(*) FROM campaign_actions WHERE customer_no ="
                                   " 'C00000001'"),
                     0);
    /* the task campaign rewarded both events of its suitable customer */
    assert_int_equal(h_sql_long(S, "SELECT COUNT(*) FROM campaign_actions WHERE campaign_id ="
                                   " 'festival-tasks' AND customer_no = 'C00000014'"),
                     2);
    /* every campaign made it through maker-checker */
    assert_int_equal(
        h_sql_long(S, "SELECT COUNT(*) FROM campaigns WHERE status = 'scheduled' AND id IN"
                      " ('festival-checkin', 'festival-tasks', 'festival-lottery',"
                      " 'noon-drop', 'invite-friends', 'daily-checkin')"),
        6);
    /* the free draw, explained by its id; the blocked device drew nothing */
    assert_int_equal(h_sql_long(S, "SELECT COUNT(*) FROM lottery_draws WHERE campaign_id ="
                                   " 'festival-lottery' AND customer_no = 'C00000014'"),
                     1);
    assert_int_equal(
        h_sql_long(S, "SELECT COUNT(*) FROM lottery_draws WHERE customer_no = 'C00000013'"), 0);
    /* the invite code captured and used: one binding paid, the same-device
     * one held and then rejected in review */
    assert_int_equal(
        h_sql_long(S, "SELECT COUNT(*) FROM referral_bindings WHERE campaign_id ="
                      " 'invite-friends' AND invitee = 'C00000012' AND status = 'rewarded'"),
        1);
    assert_int_equal(
        h_sql_long(S, "SELECT COUNT(*) FROM referral_bindings WHERE campaign_id ="
                      " 'invite-friends' AND invitee = 'C00000013' AND status = 'rejected'"),
        1);
    /* the check-ins (no open hours: any time of day) */
    assert_int_equal(h_sql_long(S, "SELECT COUNT(*) FROM campaign_actions WHERE campaign_id ="
                                   " 'festival-checkin' AND customer_no = 'C00000014'"),
                     1);
    assert_int_equal(h_sql_long(S, "SELECT COUNT(*) FROM campaign_actions WHERE campaign_id ="
                                   " 'daily-checkin' AND customer_no = 'C00000014'"),
                     1);
    char *check = NULL;
    if (h_cli(S, &check, "check --tenant demo") != 0)
        fail_msg("siyu check after the walk-through:\n%s", check ? check : "");
    free(check);
}

static void test_rewards_walkthrough(void **state)
{
    (void)state;
    char *out = run_page("rewards.md");
    assert_non_null(strstr(out, "\"insufficient-points\""));
    assert_non_null(strstr(out, "\"limit-reached\""));
    free(out);
    /* the spend reversed by its captured id, the coupon redeemed by its
     * code, the umbrella shipped, two voucher codes added */
    assert_int_equal(h_sql_long(S, "SELECT COUNT(*) FROM ledger_entries WHERE kind = 'reverse' AND"
                                   " customer_no = 'C00000001' AND reason = 'draw cancelled'"),
                     1);
    assert_int_equal(
        h_sql_long(S, "SELECT COUNT(*) FROM benefit_grants WHERE customer_no = 'C00000001'"
                      " AND item = 'cp_10' AND status = 'redeemed'"
                      " AND redeem_reference = 'pay-20261124-0001'"),
        1);
    assert_int_equal(
        h_sql_long(S, "SELECT COUNT(*) FROM benefit_grants WHERE customer_no = 'C00000001'"
                      " AND item = 'umbrella' AND fulfilment = 'shipped'"),
        1);
    assert_int_equal(h_sql_long(S,
                                "SELECT COUNT(*) FROM benefit_codes WHERE item = 'jd_50' AND code"
                                " LIKE 'JD50-NEW-%'"),
                     2);
}

static int setup(void **state)
{
    (void)state;
    start_demo();
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    h_stop(S);
    S = NULL;
    return 0;
}

int main(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_campaigns_walkthrough, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rewards_walkthrough, setup, teardown),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    curl_global_cleanup();
    return rc;
}
