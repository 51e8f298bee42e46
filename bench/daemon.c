/* bench/daemon.c: the daemons a benchmark starts itself (strata-storaged).
 *
 * The child dies with the benchmark (PR_SET_PDEATHSIG), so an interrupted
 * run leaves no node behind; readiness is the port number the daemon writes
 * to its --port-file once it serves (it binds port 0 to get a free one).
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common.h"
#include "internal.h"

int bench_daemon_start(struct bench_daemon *d, const char *const *argv,
		       const char *port_file, unsigned timeout_s)
{
	uint64_t deadline = strata_now_ns() + (uint64_t)timeout_s * 1000000000ull;

	unlink(port_file);
	d->port = 0;
	d->pid = fork();
	if (d->pid < 0) {
		d->pid = 0;
		return -errno;
	}
	if (d->pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		execv(argv[0], (char *const *)argv);
		_exit(127);
	}
	while (strata_now_ns() < deadline) {
		FILE *f = fopen(port_file, "r");
		unsigned port;

		if (f) {
			int got = fscanf(f, "%u", &port);

			fclose(f);
			if (got == 1 && port > 0 && port <= 65535) {
				d->port = (uint16_t)port;
				return 0;
			}
		}
		if (waitpid(d->pid, NULL, WNOHANG) == d->pid) {
			d->pid = 0;
			return -ECHILD;
		}
		usleep(20000);
	}
	bench_daemon_stop(d);
	return -ETIMEDOUT;
}

void bench_daemon_stop(struct bench_daemon *d)
{
	if (d->pid <= 0)
		return;
	kill(d->pid, SIGTERM);
	waitpid(d->pid, NULL, 0);
	d->pid = 0;
}
