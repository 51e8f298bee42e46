/* strata-gateway: the S3 daemon. Flags map to gw_config keys (gateway.h);
 * SIGTERM/SIGINT stop it gracefully. */
#include "gateway.h"

#include "common.h"

#include <errno.h>
#include <getopt.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>


struct daemon {
	uv_loop_t *loop;
	struct gateway *gw;
	uv_signal_t sigterm, sigint;
	bool stopping;
};

static void usage(FILE *f)
{
	fprintf(f, "usage: strata-gateway --rings DIR --credentials FILE [options]\n%s"
		"  --port-file FILE         write the bound port here once listening\n"
		"  -v, --verbose            debug logging\n", gw_config_help);
}

static void on_stopped(void *arg)
{
	struct daemon *d = arg;

	log_info("stopped");
	d->gw = NULL;	/* the loop ends when the last handle is closed */
}

static void on_signal(uv_signal_t *s, int signum)
{
	struct daemon *d = s->data;

	(void)signum;
	if (d->stopping)
		return;
	d->stopping = true;
	log_info("stopping (signal %d)", signum);
	uv_close((uv_handle_t *)&d->sigterm, NULL);
	uv_close((uv_handle_t *)&d->sigint, NULL);
	gw_stop(d->gw, on_stopped, d);
}

int main(int argc, char **argv)
{
	static const char *const keys[] = {
		"listen", "rings", "credentials", "region", "domain", "policy",
		"small-max", "unit", "read-deadline-ms", "write-deadline-ms",
		"down-ms", "node-conns", "hung-ms", "grace-ms", "max-object", "shard-max",
		"split-wait-ms", "admin-user", "lifecycle-day-seconds", "tier-pass-rate",
		"tier-pass-check-ms",
	};
	struct option opts[ARRAY_SIZE(keys) + 4];
	struct gw_config cfg;
	struct daemon d = { 0 };
	const char *port_file = NULL;
	int opt, idx, ret;

	strata_log_init("strata-gateway");
	/* Segment buffers (6 MiB) come and go per PUT/GET: keep them mapped. */
	mallopt(M_MMAP_THRESHOLD, 32 << 20);
	mallopt(M_TRIM_THRESHOLD, 64 << 20);
	signal(SIGPIPE, SIG_IGN);
	for (size_t i = 0; i < ARRAY_SIZE(keys); i++)
		opts[i] = (struct option){ keys[i], required_argument, NULL, 1000 + (int)i };
	opts[ARRAY_SIZE(keys)] = (struct option){ "port-file", required_argument, NULL, 'P' };
	opts[ARRAY_SIZE(keys) + 1] = (struct option){ "verbose", no_argument, NULL, 'v' };
	opts[ARRAY_SIZE(keys) + 2] = (struct option){ "help", no_argument, NULL, 'h' };
	opts[ARRAY_SIZE(keys) + 3] = (struct option){ 0 };
	gw_config_init(&cfg);
	while ((opt = getopt_long(argc, argv, "vh", opts, &idx)) != -1) {
		switch (opt) {
		case 'P': port_file = optarg; break;
		case 'v': strata_log_verbose = true; break;
		case 'h': usage(stdout); return 0;
		default:
			if (opt < 1000 || opt >= 1000 + (int)ARRAY_SIZE(keys))
				goto out_usage;
			ret = gw_config_set(&cfg, keys[opt - 1000], optarg);
			if (ret < 0) {
				fprintf(stderr, "strata-gateway: --%s: bad value '%s'\n",
					keys[opt - 1000], optarg);
				return 2;
			}
		}
	}
	if (optind != argc || gw_config_complete(&cfg) < 0)
		goto out_usage;
	d.loop = uv_default_loop();
	ret = gw_start(d.loop, &cfg, &d.gw);
	if (ret < 0)
		return 1;
	if (port_file)
		strata_write_port_file(port_file, (unsigned)gw_port(d.gw));
	uv_signal_init(d.loop, &d.sigterm);
	uv_signal_init(d.loop, &d.sigint);
	d.sigterm.data = d.sigint.data = &d;
	uv_signal_start(&d.sigterm, on_signal, SIGTERM);
	uv_signal_start(&d.sigint, on_signal, SIGINT);
	uv_run(d.loop, UV_RUN_DEFAULT);
	if (uv_loop_close(d.loop) != 0)
		log_warn("handles left open at exit");
	return 0;

out_usage:
	usage(stderr);
	return 2;
}
