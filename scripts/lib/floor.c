/* floor.c: the least a symmetric heartbeat can cost on this machine, for
 * scripts/bench-footprint (column "floor"). Build: gcc -O2 -o floor floor.c
 *
 * Usage: floor IFACE OWN_ADDR BCAST_ADDR PORT PERIOD_MS LEN [timer-only]
 *
 * One UDP socket bound to PORT on IFACE. Every PERIOD_MS it broadcasts LEN zero bytes to
 * BCAST_ADDR:PORT, and it reads every datagram that arrives, as each node of a pair does with
 * one `bcast` link: the same wakes (one timer wake, one receive wake per period), the same
 * kind of syscalls (a poll, a sendto, one read per datagram; hapair uses poll and recvmmsg)
 * and the same kernel filter for its own looped-back broadcasts as hapair's, and no work of
 * its own: no frame, no MAC, no state. What a pair of
 * these costs is the floor under any daemon that sends and hears a heartbeat every period on
 * this link of this machine. It runs until killed.
 *
 * With timer-only it never wakes for a datagram: it sleeps to the next period, sends, and
 * reads what arrived meanwhile (one wake per period, the fewest any sender can have; a
 * daemon built so would hear its peer up to a period late).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <linux/filter.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

static void die(const char *what)
{
	perror(what);
	exit(1);
}

static long long now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

int main(int argc, char **argv)
{
	int timer_only = argc == 8 && strcmp(argv[7], "timer-only") == 0;
	if (argc != 7 && !timer_only) {
		fprintf(stderr, "usage: floor IFACE OWN_ADDR BCAST_ADDR PORT PERIOD_MS LEN "
				"[timer-only]\n");
		return 2;
	}
	struct in_addr own, bcast;
	if (!inet_aton(argv[2], &own) || !inet_aton(argv[3], &bcast)) {
		fprintf(stderr, "floor: bad address\n");
		return 2;
	}
	int port = atoi(argv[4]);
	long long period = atoll(argv[5]) * 1000000LL;
	size_t len = (size_t)atoi(argv[6]);
	char out[1500] = {0}, in[1500];
	if (port <= 0 || port > 65535 || period <= 0 || len > sizeof out) {
		fprintf(stderr, "floor: bad port, period or length\n");
		return 2;
	}

	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		die("socket");
	int one = 1;
	if (setsockopt(fd, SOL_SOCKET, SO_BROADCAST, &one, sizeof one) < 0)
		die("SO_BROADCAST");
	if (setsockopt(fd, SOL_SOCKET, SO_BINDTODEVICE, argv[1], strlen(argv[1])) < 0)
		die("SO_BINDTODEVICE");
	/* Drop our own broadcasts, which the kernel loops back (IPv4 source == own). */
	struct sock_filter code[] = {
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, SKF_NET_OFF + 12),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, ntohl(own.s_addr), 0, 1),
		BPF_STMT(BPF_RET | BPF_K, 0),
		BPF_STMT(BPF_RET | BPF_K, 0xffffffff),
	};
	struct sock_fprog prog = {.len = sizeof code / sizeof code[0], .filter = code};
	if (setsockopt(fd, SOL_SOCKET, SO_ATTACH_FILTER, &prog, sizeof prog) < 0)
		die("SO_ATTACH_FILTER");
	struct sockaddr_in any = {.sin_family = AF_INET, .sin_port = htons(port)};
	if (bind(fd, (struct sockaddr *)&any, sizeof any) < 0)
		die("bind");
	struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons(port), .sin_addr = bcast};

	long long next = now_ns();
	for (;;) {
		long long now = now_ns();
		if (now >= next) {
			if (sendto(fd, out, len, 0, (struct sockaddr *)&to, sizeof to) < 0 &&
			    errno != EAGAIN)
				die("sendto");
			next += period;
			if (next <= now)
				next = now + period;
		}
		long long wait = next - now_ns();
		struct timespec ts = {.tv_sec = 0, .tv_nsec = 0};
		if (wait > 0) {
			ts.tv_sec = wait / 1000000000LL;
			ts.tv_nsec = wait % 1000000000LL;
		}
		struct pollfd pfd = {.fd = fd, .events = POLLIN};
		if (timer_only) {
			if (ppoll(NULL, 0, &ts, NULL) < 0 && errno != EINTR)
				die("ppoll");
			while (recv(fd, in, sizeof in, 0) >= 0)
				;
			if (errno != EAGAIN)
				die("recv");
			continue;
		}
		if (ppoll(&pfd, 1, &ts, NULL) < 0 && errno != EINTR)
			die("ppoll");
		/* One read per wake (a second datagram wakes the next ppoll at once). */
		if ((pfd.revents & POLLIN) && recv(fd, in, sizeof in, 0) < 0 && errno != EAGAIN)
			die("recv");
	}
}
