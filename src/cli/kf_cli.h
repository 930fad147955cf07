/* kf_cli.h: the sub-commands of the kforge binary and the option helpers they share. */
#ifndef KF_CLI_H
#define KF_CLI_H

#include <signal.h>

extern volatile sig_atomic_t kf_cli_interrupted; /* the CLI's one piece of global state */

int kf_cmd_check(int argc, char **argv);
int kf_cmd_bench(int argc, char **argv);
int kf_cmd_show(int argc, char **argv);

/* "--name value" / "--name=value" parsing over argv[*i]; returns the value or NULL. */
const char *kf_cli_value(int argc, char **argv, int *i, const char *name);
int kf_cli_int(const char *s, int *out);
int kf_cli_double(const char *s, double *out);
/* Private temp folder ($TMPDIR/kforge-XXXXXX, 0700); removed by kf_cli_rmtree. */
char *kf_cli_mkworkdir(void);
void kf_cli_rmtree(const char *path);
const char *kf_cli_default_cache(char *buf, int n);

struct kf_harness_opts;
/* Options shared by check and bench (--trials --runs --warmup --atol --rtol --timeout
 * --mem-limit --threads --cache --seed). Returns 1 if argv[*i] was one of them (value
 * consumed), 0 if not, -1 on a bad value (message printed: this is the CLI). */
int kf_cli_harness_opt(int argc, char **argv, int *i, struct kf_harness_opts *o);
/* The harness defaults with the cache flush capped at KF_CLI_FLUSH_CAP: some VMs report the
 * whole host's last-level cache (480 MiB here), and writing twice that before each of the
 * ~100 timed runs of a problem costs 15 s. Both sides get the same flush; --flush-mb 0 asks
 * for exactly 2x the reported last-level cache. */
#define KF_CLI_FLUSH_CAP (256LL << 20)
void kf_cli_harness_defaults(struct kf_harness_opts *o);
/* SIGINT/SIGTERM set kf_cli_interrupted (a second Ctrl-C exits at once). */
void kf_cli_install_signals(void);

#endif
