/* flood.c: the fastest flood one core can send at a hapair heartbeat port (or at a VRRP
 * node), for scripts/bench-flood and tests/daemon_flood.rs. Build: gcc -O2 -o flood flood.c
 *
 * Usage: flood TARGET_ADDR PORT SECONDS KINDS [CAPTURE_SECONDS SENDER LINK]
 *        flood TARGET_ADDR vrrp SECONDS KINDS [CAPTURE_SECONDS IFACE]
 *
 * Sends UDP datagrams to TARGET_ADDR:PORT (IPv4) for SECONDS, as fast as sendmmsg(2) takes
 * them, in batches of 64 that cycle through KINDS, any of the letters:
 *   g  garbage: random bytes of a random length, 1 to 1400
 *   f  forgeries of a frame's length: 87 random bytes (a version 2 frame's length)
 *   s  frame-shaped forgeries: 87 bytes whose first four are a v2 frame's (version 2, body
 *      length 55, SENDER, LINK), the rest random: what no stateless filter can tell from a
 *      frame, so the daemon reads and authenticates each one
 *   r  replays: the real frames heard on PORT (any address) during the CAPTURE_SECONDS
 *      before the flood, sent again as they were, over and over
 * With r, CAPTURE_SECONDS SENDER LINK are required: only captured datagrams whose sender
 * and link bytes are SENDER and LINK (the frames the target hears from its peer) are kept.
 *
 * With vrrp instead of a port, the same kinds go to TARGET_ADDR as IP protocol 112 (VRRP,
 * raw socket, TTL 255 as VRRP requires): a frame's length is then a VRRPv3 advertisement's
 * with one IPv4 address (12 bytes), "frame-shaped" is version 3, type 1, VRID 51, priority
 * 150, one address and a random checksum, and r replays the advertisements heard on IFACE
 * (the group 224.0.0.18 joined there) during CAPTURE_SECONDS.
 *
 * At the end it prints one line: "sent N garbage G forged F shaped S replayed R captured C
 * seconds T". It sends nothing but to TARGET_ADDR, from the namespace it runs in, and
 * refuses a TARGET_ADDR outside the documentation ranges (192.0.2.0/24, 198.51.100.0/24,
 * 203.0.113.0/24), so that a slip cannot flood a real network. Exit 1 on a setup error
 * (naming it), 2 on a usage error.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define BATCH 64
#define DATAGRAM_MAX 1400
#define FRAME_LEN 87
#define CAPTURED_MAX 64
#define IPPROTO_VRRP 112
#define ADVERT_LEN 12

static void die(const char *what)
{
	perror(what);
	exit(1);
}

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static uint64_t rng = 0x9e3779b97f4a7c15ull;

static uint64_t next_random(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

static void fill_random(unsigned char *buf, size_t len)
{
	for (size_t i = 0; i < len; i += 8) {
		uint64_t r = next_random();
		memcpy(buf + i, &r, len - i < 8 ? len - i : 8);
	}
}

static unsigned char captured[CAPTURED_MAX][FRAME_LEN + 41];
static size_t captured_len[CAPTURED_MAX];
static int captured_n;

/* Listens on PORT for `seconds` and keeps up to CAPTURED_MAX frames of SENDER on LINK. */
static void capture(int port, double seconds, int sender, int link)
{
	int s = socket(AF_INET, SOCK_DGRAM, 0);
	if (s < 0)
		die("capture socket");
	int one = 1;
	setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	struct sockaddr_in any = {.sin_family = AF_INET, .sin_port = htons(port)};
	if (bind(s, (struct sockaddr *)&any, sizeof any) < 0)
		die("capture bind");
	double end = now_s() + seconds;
	while (captured_n < CAPTURED_MAX) {
		double left = end - now_s();
		if (left <= 0)
			break;
		struct pollfd p = {.fd = s, .events = POLLIN};
		if (poll(&p, 1, (int)(left * 1000) + 1) <= 0)
			continue;
		unsigned char buf[DATAGRAM_MAX];
		ssize_t n = recv(s, buf, sizeof buf, MSG_DONTWAIT);
		if (n < 4 || n > (ssize_t)sizeof captured[0] || buf[2] != sender || buf[3] != link)
			continue;
		memcpy(captured[captured_n], buf, n);
		captured_len[captured_n++] = n;
	}
	close(s);
}

/* Listens for VRRP advertisements on IFACE for `seconds` and keeps up to CAPTURED_MAX. */
static void capture_vrrp(const char *iface, double seconds)
{
	int s = socket(AF_INET, SOCK_RAW, IPPROTO_VRRP);
	if (s < 0)
		die("capture raw socket");
	struct ip_mreqn group = {.imr_ifindex = (int)if_nametoindex(iface)};
	inet_pton(AF_INET, "224.0.0.18", &group.imr_multiaddr);
	if (setsockopt(s, IPPROTO_IP, IP_ADD_MEMBERSHIP, &group, sizeof group) < 0)
		die("join 224.0.0.18");
	double end = now_s() + seconds;
	while (captured_n < CAPTURED_MAX) {
		double left = end - now_s();
		if (left <= 0)
			break;
		struct pollfd p = {.fd = s, .events = POLLIN};
		if (poll(&p, 1, (int)(left * 1000) + 1) <= 0)
			continue;
		unsigned char buf[DATAGRAM_MAX];
		ssize_t n = recv(s, buf, sizeof buf, MSG_DONTWAIT);
		/* A raw socket hands over the IP header too. */
		if (n < 20 || n - (buf[0] & 0x0f) * 4 < 8)
			continue;
		size_t header = (buf[0] & 0x0f) * 4, len = n - header;
		if (len > sizeof captured[0])
			continue;
		memcpy(captured[captured_n], buf + header, len);
		captured_len[captured_n++] = len;
	}
	close(s);
}

int main(int argc, char **argv)
{
	if (argc != 5 && argc != 7 && argc != 8) {
		fprintf(stderr, "usage: flood TARGET_ADDR PORT SECONDS KINDS "
				"[CAPTURE_SECONDS SENDER LINK]\n");
		return 2;
	}
	int vrrp = strcmp(argv[2], "vrrp") == 0;
	if (vrrp && argc != 5 && argc != 7) {
		fprintf(stderr, "usage: flood TARGET_ADDR vrrp SECONDS KINDS "
				"[CAPTURE_SECONDS IFACE]\n");
		return 2;
	}
	struct sockaddr_in to = {.sin_family = AF_INET};
	if (!vrrp)
		to.sin_port = htons(atoi(argv[2]));
	if (inet_pton(AF_INET, argv[1], &to.sin_addr) != 1) {
		fprintf(stderr, "flood: bad address %s\n", argv[1]);
		return 2;
	}
	uint32_t net = ntohl(to.sin_addr.s_addr) & 0xffffff00u;
	if (net != 0xc0000200u && net != 0xc6336400u && net != 0xcb007100u) {
		fprintf(stderr, "flood: %s is outside 192.0.2.0/24, 198.51.100.0/24 and "
				"203.0.113.0/24: refused\n", argv[1]);
		return 2;
	}
	double seconds = atof(argv[3]);
	const char *kinds = argv[4];
	if (!*kinds || strspn(kinds, "gfsr") != strlen(kinds)) {
		fprintf(stderr, "flood: KINDS is letters of g f s r\n");
		return 2;
	}
	int sender = 0, link = 0;
	size_t frame_len = vrrp ? ADVERT_LEN : FRAME_LEN;
	int replays = strchr(kinds, 'r') != NULL;
	if (vrrp) {
		if (replays && argc != 7) {
			fprintf(stderr, "flood: r needs CAPTURE_SECONDS IFACE\n");
			return 2;
		}
		if (replays)
			capture_vrrp(argv[6], atof(argv[5]));
	} else {
		if (argc == 7 || (replays && argc != 8)) {
			fprintf(stderr, "flood: r needs CAPTURE_SECONDS SENDER LINK\n");
			return 2;
		}
		if (argc == 8) {
			sender = atoi(argv[6]);
			link = atoi(argv[7]);
		}
		if (replays)
			capture(atoi(argv[2]), atof(argv[5]), sender, link);
	}
	if (replays && captured_n == 0) {
		fprintf(stderr, "flood: nothing to replay was heard\n");
		return 1;
	}
	rng ^= (uint64_t)now_s() * 1000003u;
	int s = vrrp ? socket(AF_INET, SOCK_RAW, IPPROTO_VRRP) : socket(AF_INET, SOCK_DGRAM, 0);
	if (s < 0)
		die("socket");
	int ttl = 255;
	if (vrrp && setsockopt(s, IPPROTO_IP, IP_TTL, &ttl, sizeof ttl) < 0)
		die("IP_TTL");
	static unsigned char bufs[BATCH][DATAGRAM_MAX];
	struct iovec iovs[BATCH];
	struct mmsghdr msgs[BATCH];
	memset(msgs, 0, sizeof msgs);
	unsigned long long sent = 0, by_kind[4] = {0};
	const char *order = "gfsr";
	size_t kind_i = 0, replay_i = 0;
	double end = now_s() + seconds;
	while (now_s() < end) {
		char kind = kinds[kind_i++ % strlen(kinds)];
		for (int i = 0; i < BATCH; i++) {
			size_t len = frame_len;
			switch (kind) {
			case 'g':
				len = 1 + next_random() % DATAGRAM_MAX;
				fill_random(bufs[i], len);
				break;
			case 'f':
				fill_random(bufs[i], len);
				break;
			case 's':
				fill_random(bufs[i], len);
				if (vrrp) {
					/* v3 advertisement, VRID 51, priority 150, one address */
					memcpy(bufs[i], "\x31\x33\x96\x01\x00\x01", 6);
					break;
				}
				bufs[i][0] = 2;
				bufs[i][1] = FRAME_LEN - 32;
				bufs[i][2] = sender;
				bufs[i][3] = link;
				break;
			case 'r':
				len = captured_len[replay_i % captured_n];
				memcpy(bufs[i], captured[replay_i++ % captured_n], len);
				break;
			}
			iovs[i].iov_base = bufs[i];
			iovs[i].iov_len = len;
			msgs[i].msg_hdr.msg_name = &to;
			msgs[i].msg_hdr.msg_namelen = sizeof to;
			msgs[i].msg_hdr.msg_iov = &iovs[i];
			msgs[i].msg_hdr.msg_iovlen = 1;
		}
		int n = sendmmsg(s, msgs, BATCH, 0);
		if (n > 0) {
			sent += n;
			by_kind[strchr(order, kind) - order] += n;
		}
	}
	printf("sent %llu garbage %llu forged %llu shaped %llu replayed %llu captured %d "
	       "seconds %.1f\n",
	       sent, by_kind[0], by_kind[1], by_kind[2], by_kind[3], captured_n, seconds);
	return 0;
}
