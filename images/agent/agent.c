/*
 * modverify guest agent: PID 1 of the initramfs modverify writes.
 *
 * Mounts /proc, /sys, /dev; loads every module of /modverify/plan in order with
 * finit_module (each in a forked child, so an oops in a module's init kills the child, not
 * us); captures the return value, errno and the kernel's own messages (/dev/kmsg) for each;
 * reads the running kernel's export table from live memory through /proc/kcore, located
 * through /proc/kallsyms: __ksymtab + __ksymtab_gpl with their __kcrctab*, or, from 7.1 on,
 * one __ksymtab with a __kflagstab byte per entry (bit 0: GPL-only) and no _gpl tables; a
 * kernel without MODVERSIONS has no __kcrctab at all; unloads the modules in reverse order; reports
 * "done" and powers off.
 *
 * Results go to the console as framed records that no kernel message can forge or break:
 *   @MV <token> <seq> <crc32 of payload, hex> <type> <payload>\n
 * The token is random per run (chosen by the host), seq counts records, and the payload
 * escapes every byte outside [A-Za-z0-9_.,:/=+-] as %XX, so it holds no spaces or newlines.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/klog.h>
#include <sys/mount.h>
#include <sys/reboot.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#if __SIZEOF_LONG__ == 8
typedef Elf64_Ehdr Ehdr;
typedef Elf64_Phdr Phdr;
#else
typedef Elf32_Ehdr Ehdr;
typedef Elf32_Phdr Phdr;
#endif

#define MAX_MODULES 4096
#define RECORD_MAX 1024

static char token[64] = "none";
static unsigned long seq;
static int console = 1;
/* Where records go: the console, or a second serial port the host attached for them. */
static int results_fd = 1;
static int kmsg = -1;
static char layout[16] = "absolute";
static int module_timeout = 30;
/* Where kcore maps no RAM at all (alpha), /dev/mem at virtual - devmem_offset. */
static unsigned long long devmem_offset;
static int use_devmem; /* the plan gave an offset (0 is one: m68k maps RAM at virtual 0) */
static int devmem = -1;
/* `kcore_split4`: the kernel gets 8-byte copies of its own memory wrong (sh: reading kcore
 * with them oopses or resets the machine), so no kcore read may start on an 8-byte boundary:
 * copy_from_kernel_nofault picks its width from the source's alignment, and 4 bytes past
 * one it copies 4 bytes at a time. kcore copies page by page, hence a read per page. */
static int kcore_split4;
static int full_table;
/* `table none`: another boot of the same kernel (an earlier batch) reads the export table. */
static int skip_table;
/* Kernel messages drained so far: the decompression probe asks whether a refusal said anything. */
static unsigned long kmsg_lines;

static uint32_t crc32(const unsigned char *p, size_t n)
{
	uint32_t c = 0xffffffffu;
	while (n--) {
		c ^= *p++;
		for (int k = 0; k < 8; k++)
			c = (c >> 1) ^ (0xedb88320u & -(c & 1));
	}
	return ~c;
}

static void write_all(int fd, const char *buf, size_t n)
{
	while (n) {
		ssize_t w = write(fd, buf, n);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return;
		}
		buf += w;
		n -= (size_t)w;
	}
}

/* Appends `s` escaped to `out` (capacity cap); returns the new length. */
static size_t escape(char *out, size_t len, size_t cap, const char *s, size_t n)
{
	static const char hex[] = "0123456789ABCDEF";
	for (size_t i = 0; i < n && len + 4 < cap; i++) {
		unsigned char c = (unsigned char)s[i];
		if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		    strchr("_.,:/=+-", c)) {
			out[len++] = (char)c;
		} else {
			out[len++] = '%';
			out[len++] = hex[c >> 4];
			out[len++] = hex[c & 15];
		}
	}
	out[len] = 0;
	return len;
}

static const char *record_lead;

/* One record; the fields of `fmt` are joined by spaces in the payload, which is escaped. */
static void record(const char *type, const char *fmt, ...)
{
	char raw[RECORD_MAX], payload[RECORD_MAX * 3], line[RECORD_MAX * 3 + 160];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(raw, sizeof raw, fmt, ap);
	va_end(ap);
	if (n < 0)
		n = 0;
	if ((size_t)n >= sizeof raw)
		n = sizeof raw - 1;
	size_t plen = escape(payload, 0, sizeof payload, raw, (size_t)n);
	int len = snprintf(line, sizeof line, "%s@MV %s %lu %08x %s %s\n", record_lead, token, seq++,
			   crc32((unsigned char *)payload, plen), type, payload);
	write_all(results_fd, line, (size_t)len);
}

static void power_off(void)
{
	sync();
	reboot(RB_POWER_OFF);
	for (;;)
		pause();
}

/* Sends every kernel message that arrived since the last call, tagged with `what`. */
static void drain_kmsg(const char *what)
{
	char buf[2048];
	if (kmsg < 0)
		return;
	for (;;) {
		ssize_t n = read(kmsg, buf, sizeof buf - 1);
		if (n < 0) {
			if (errno == EPIPE) /* overwritten records: keep reading */
				continue;
			return;
		}
		buf[n] = 0;
		char *msg = strchr(buf, ';');
		if (!msg)
			continue;
		msg++;
		char *nl = strchr(msg, '\n');
		if (nl)
			*nl = 0;
		/* level: first field of "pri,seq,ts,flags" (facility in the upper bits) */
		record("kmsg", "%s %d %s", what, atoi(buf) & 7, msg);
		kmsg_lines++;
	}
}

struct module {
	char file[256];
	char name[64];
	/* finit_module flags: 4 (MODULE_INIT_COMPRESSED_FILE) for a module the kernel
	 * decompresses itself (5.17+, CONFIG_MODULE_DECOMPRESS). */
	int flags;
};
static struct module mods[MAX_MODULES];
static int nmods;

static void read_plan(void)
{
	FILE *f = fopen("/modverify/plan", "r");
	char line[512];
	if (!f) {
		record("error", "cannot open /modverify/plan: %s", strerror(errno));
		power_off();
	}
	while (fgets(line, sizeof line, f)) {
		char a[256], b[64];
		if (sscanf(line, "token %63s", token) == 1)
			continue;
		if (sscanf(line, "layout %15s", layout) == 1)
			continue;
		if (sscanf(line, "module_timeout %d", &module_timeout) == 1)
			continue;
		if (!strncmp(line, "kcore_split4", 12)) {
			kcore_split4 = 1;
			continue;
		}
		if (sscanf(line, "devmem_offset %llx", &devmem_offset) == 1) {
			use_devmem = 1;
			continue;
		}
		if (!strncmp(line, "table full", 10)) {
			full_table = 1;
			continue;
		}
		if (!strncmp(line, "table none", 10)) {
			skip_table = 1;
			continue;
		}
		int flags = 0;
		if (nmods < MAX_MODULES && sscanf(line, "module %255s %63s %d", a, b, &flags) >= 2) {
			snprintf(mods[nmods].file, sizeof mods[nmods].file, "%s", a);
			snprintf(mods[nmods].name, sizeof mods[nmods].name, "%s", b);
			mods[nmods].flags = flags;
			nmods++;
		}
	}
	fclose(f);
}

/* modverify.start=N and modverify.shell=1 on the kernel command line. */
static int cmdline_int(const char *key, int dflt)
{
	char buf[4096];
	int fd = open("/proc/cmdline", O_RDONLY), v = dflt;
	if (fd < 0)
		return dflt;
	ssize_t n = read(fd, buf, sizeof buf - 1);
	close(fd);
	if (n <= 0)
		return dflt;
	buf[n] = 0;
	char *p = strstr(buf, key);
	if (p && p[strlen(key)] == '=')
		v = atoi(p + strlen(key) + 1);
	return v;
}

/* modverify.results=ttyS1: the host attached a file to that port; send records there, raw. */
static void open_result_port(void)
{
	char buf[4096], dev[64];
	int fd = open("/proc/cmdline", O_RDONLY);
	ssize_t n = fd >= 0 ? read(fd, buf, sizeof buf - 1) : -1;
	if (fd >= 0)
		close(fd);
	if (n <= 0)
		return;
	buf[n] = 0;
	char *p = strstr(buf, "modverify.results=");
	if (!p || sscanf(p + strlen("modverify.results="), "%47[A-Za-z0-9]", dev + 5) != 1)
		return;
	memcpy(dev, "/dev/", 5);
	int r = open(dev, O_WRONLY | O_NOCTTY);
	if (r < 0)
		return; /* no such port: records stay on the console */
	struct termios t;
	if (tcgetattr(r, &t) == 0) {
		cfmakeraw(&t);
		tcsetattr(r, TCSANOW, &t);
	}
	results_fd = r;
}

/* errno names, from this arch's own <errno.h>: the numbers differ between arches. */
static const char *errno_name(int e)
{
#define N(x) case x: return #x;
	switch (e) {
	N(EPERM) N(ENOENT) N(ESRCH) N(EINTR) N(EIO) N(ENXIO) N(E2BIG) N(ENOEXEC) N(EBADF)
	N(EAGAIN) N(ENOMEM) N(EACCES) N(EFAULT) N(EBUSY) N(EEXIST) N(ENODEV) N(EINVAL)
	N(ENOSPC) N(ERANGE) N(ENOSYS) N(ENODATA) N(ETIME) N(EOVERFLOW) N(EBADMSG)
	N(EOPNOTSUPP) N(EADDRINUSE) N(EPROTONOSUPPORT) N(EAFNOSUPPORT) N(ETIMEDOUT)
	N(EKEYREJECTED) N(ENOKEY) N(ENOMEDIUM) N(ECANCELED) N(EHOSTUNREACH)
	/* kernel-internal codes, the same on every arch */
	case 517: return "EPROBE_DEFER";
	case 524: return "ENOTSUPP";
	}
#undef N
	return "E?";
}

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Loads one module in a child and records the result; returns finit_module's errno (0 if
 * it loaded, -1 if the child died or hung). */
static int load(int i)
{
	int pipefd[2];
	double t0 = now();
	record("load", "%d %s", i, mods[i].name);
	if (pipe(pipefd) < 0) {
		int e = errno;
		record("result", "%d %s -1 %d 0", i, mods[i].name, e);
		return e;
	}
	pid_t pid = fork();
	if (pid == 0) {
		int fd = open(mods[i].file, O_RDONLY | O_CLOEXEC), res[2];
		if (fd < 0) {
			res[0] = -1;
			res[1] = errno;
		} else {
			res[0] = (int)syscall(SYS_finit_module, fd, "", mods[i].flags);
			res[1] = res[0] ? errno : 0;
		}
		write_all(pipefd[1], (char *)res, sizeof res);
		_exit(0);
	}
	close(pipefd[1]);
	int res[2] = { -1, 0 }, status = 0, got = 0;
	for (;;) {
		pid_t w = waitpid(pid, &status, WNOHANG);
		if (w == pid)
			break;
		if (now() - t0 > module_timeout) {
			drain_kmsg(mods[i].name);
			record("result", "%d %s hung 0 %.0f", i, mods[i].name, (now() - t0) * 1e6);
			kill(pid, SIGKILL);
			close(pipefd[0]);
			return -1;
		}
		usleep(2000);
	}
	got = read(pipefd[0], res, sizeof res) == sizeof res;
	close(pipefd[0]);
	drain_kmsg(mods[i].name);
	if (!got || !WIFEXITED(status)) {
		record("result", "%d %s crashed %d %.0f", i, mods[i].name,
		       WIFSIGNALED(status) ? WTERMSIG(status) : -1, (now() - t0) * 1e6);
		return -1;
	}
	record("result", "%d %s %d %d %.0f %s", i, mods[i].name, res[0], res[1], (now() - t0) * 1e6,
	       res[0] ? errno_name(res[1]) : "-");
	return res[0] ? res[1] : 0;
}

/* ---- the running kernel's export table ---------------------------------------------- */

struct segment {
	uint64_t vaddr, paddr, offset, size;
};
/* Where the kernel image is not inside any PT_LOAD by its virtual address (riscv64 maps the
 * image at KERNEL_LINK_ADDR, kcore only lists the linear map), it is found by its physical
 * address: "Kernel code" in /proc/iomem is the physical address of _text. */
static uint64_t image_va, image_pa;
static int have_image_pa;

static struct segment segs[256];
static int nsegs;
static int kcore = -1;

static int kcore_open(void)
{
	Ehdr eh;
	kcore = open("/proc/kcore", O_RDONLY);
	if (kcore < 0 || pread(kcore, &eh, sizeof eh, 0) != sizeof eh)
		return -1;
	for (int i = 0; i < eh.e_phnum && nsegs < 256; i++) {
		Phdr ph;
		if (pread(kcore, &ph, sizeof ph, (off_t)(eh.e_phoff + (uint64_t)i * eh.e_phentsize)) != sizeof ph)
			return -1;
		if (ph.p_type == PT_LOAD) {
			segs[nsegs].vaddr = ph.p_vaddr;
			segs[nsegs].paddr = ph.p_paddr;
			segs[nsegs].offset = ph.p_offset;
			segs[nsegs].size = ph.p_memsz;
			nsegs++;
		}
	}
	return 0;
}

/* n bytes of kcore at file offset off, which holds kernel address addr; 0 or -1. */
static int kcore_pread(void *buf, size_t n, uint64_t addr, off_t off)
{
	if (!kcore_split4)
		return pread(kcore, buf, n, off) == (ssize_t)n ? 0 : -1;
	size_t done = 0;
	while (done < n) {
		uint64_t a = addr + done;
		size_t page = (size_t)getpagesize();
		size_t c = n - done, room = page - (size_t)(a & (page - 1));
		if (c > room)
			c = room;
		if (!(a & 7) && c >= 8)
			c = 4;
		if (pread(kcore, (char *)buf + done, c, off + (off_t)done) != (ssize_t)c)
			return -1;
		done += c;
	}
	return 0;
}

/* Reads kernel memory at a virtual address; /proc/kcore's size reads 0 on alpha, so
 * offsets come from its program headers. */
static int kread(uint64_t addr, void *buf, size_t n)
{
	for (int i = 0; i < nsegs; i++) {
		if (addr >= segs[i].vaddr && addr + n <= segs[i].vaddr + segs[i].size)
			return kcore_pread(buf, n, addr, (off_t)(segs[i].offset + addr - segs[i].vaddr));
	}
	if (have_image_pa && addr >= image_va) {
		uint64_t pa = image_pa + (addr - image_va);
		for (int i = 0; i < nsegs; i++) {
			if (segs[i].paddr && pa >= segs[i].paddr && pa + n <= segs[i].paddr + segs[i].size)
				return kcore_pread(buf, n, addr, (off_t)(segs[i].offset + pa - segs[i].paddr));
		}
	}
	if (use_devmem && addr >= devmem_offset) {
		if (devmem < 0)
			devmem = open("/dev/mem", O_RDONLY);
		if (devmem >= 0)
			return pread(devmem, buf, n, (off_t)(addr - devmem_offset)) == (ssize_t)n ? 0 : -1;
	}
	return -1;
}

static void find_image_pa(void)
{
	FILE *f = fopen("/proc/iomem", "r");
	char line[256];
	unsigned long long a, b;
	if (!f)
		return;
	while (fgets(line, sizeof line, f)) {
		if (strstr(line, "Kernel code") && sscanf(line, " %llx-%llx", &a, &b) == 2) {
			image_pa = a;
			have_image_pa = image_va != 0;
			break;
		}
	}
	fclose(f);
}

static int kstring(uint64_t addr, char *out, size_t cap)
{
	size_t i = 0;
	for (; i + 1 < cap; i++) {
		if (kread(addr + i, &out[i], 1) < 0)
			return -1;
		if (!out[i])
			return 0;
	}
	out[i] = 0;
	return 0;
}

/* The table boundaries, found in one pass over /proc/kallsyms (it is slow to read on an
 * emulated CPU). */
static const char *const bounds[] = {
	"__start___ksymtab", "__stop___ksymtab", "__start___ksymtab_gpl", "__stop___ksymtab_gpl",
	"__start___kcrctab", "__stop___kcrctab", "__start___kcrctab_gpl", "__stop___kcrctab_gpl",
	"__start___kflagstab", "__stop___kflagstab",
};
#define NBOUNDS ((int)(sizeof bounds / sizeof bounds[0]))
static uint64_t bound_addr[NBOUNDS];

static void find_bounds(void)
{
	FILE *f = fopen("/proc/kallsyms", "r");
	char line[512], type, name[256];
	unsigned long long addr;
	int found = 0;
	if (!f)
		return;
	while (found < NBOUNDS && fgets(line, sizeof line, f)) {
		if (!strstr(line, " __st") && !strstr(line, " _text"))
			continue;
		if (sscanf(line, "%llx %c %255s", &addr, &type, name) != 3)
			continue;
		if (!strcmp(name, "_text"))
			image_va = addr;
		/* kallsyms is in address order and the kernel parameters follow the export
		 * tables (vmlinux.lds.h, RO_DATA): the tables a kernel lacks (_gpl before 7.1,
		 * __kflagstab after) will not come, so the rest of the file need not be read. */
		if (bound_addr[0] && !strcmp(name, "__start___param"))
			break;
		for (int i = 0; i < NBOUNDS; i++)
			if (!bound_addr[i] && !strcmp(name, bounds[i])) {
				bound_addr[i] = addr;
				found++;
			}
	}
	fclose(f);
}

static uint64_t ksym(const char *want)
{
	for (int i = 0; i < NBOUNDS; i++)
		if (!strcmp(bounds[i], want))
			return bound_addr[i];
	return 0;
}

/* A string from the bulk-read buffer, or straight from kcore if it lies outside it. */
static void string_at(const char *buf, uint64_t lo, size_t len, uint64_t addr, char *out, size_t cap)
{
	if (buf && addr >= lo && addr < lo + len) {
		size_t off = (size_t)(addr - lo), n = 0;
		while (n + 1 < cap && off + n < len && buf[off + n])
			n++;
		if (off + n < len || n + 1 == cap) {
			memcpy(out, buf + off, n);
			out[n] = 0;
			return;
		}
	}
	kstring(addr, out, cap);
}

static void crc32_feed(uint32_t *c, const char *s)
{
	const unsigned char *p = (const unsigned char *)s;
	do {
		*c ^= *p;
		for (int b = 0; b < 8; b++)
			*c = (*c >> 1) ^ (0xedb88320u & -(*c & 1));
	} while (*p++);
}

/* One table: its entries (name, namespace), the CRC slot the kernel reads for each (none
 * without MODVERSIONS) and, where the kernel has one (7.1+), its flags byte. */
static void export_table(const char *tab, const char *crctab, const char *flagtab)
{
	char s[128], n[128];
	snprintf(s, sizeof s, "__start___%s", tab);
	snprintf(n, sizeof n, "__stop___%s", tab);
	uint64_t start = ksym(s), stop = ksym(n);
	snprintf(s, sizeof s, "__start___%s", crctab);
	snprintf(n, sizeof n, "__stop___%s", crctab);
	uint64_t cstart = ksym(s), cstop = ksym(n);
	int prel = !strcmp(layout, "prel32");
	size_t esize = prel ? 12 : 3 * sizeof(long);
	if (!start || stop < start) {
		record("table", "%s missing", tab);
		return;
	}
	size_t count = (size_t)(stop - start) / esize;
	size_t ncrc = cstart && cstop >= cstart ? (size_t)(cstop - cstart) / 4 : 0;
	uint64_t fstart = 0, fstop = 0;
	if (flagtab) {
		snprintf(s, sizeof s, "__start___%s", flagtab);
		snprintf(n, sizeof n, "__stop___%s", flagtab);
		fstart = ksym(s);
		fstop = ksym(n);
	}
	if (fstart && fstop >= fstart)
		record("table", "%s %zu %zu %zu", tab, count, ncrc, (size_t)(fstop - fstart));
	else
		record("table", "%s %zu %zu", tab, count, ncrc);

	/* One read per table and one for the strings: every pread of /proc/kcore is costly on
	 * an emulated CPU. The CRC of entry i is read at cstart + 4i even past the table's end,
	 * exactly as the kernel's symversion() does. */
	unsigned char *ents = malloc(count * esize + 1), *crcbuf = malloc(count * 4 + 4);
	uint64_t *name_at = malloc(count * sizeof *name_at + 1), *ns_at = malloc(count * sizeof *ns_at + 1);
	if (!ents || !crcbuf || !name_at || !ns_at || kread(start, ents, count * esize) < 0) {
		char segsdesc[512];
		size_t l = 0;
		for (int i = 0; i < nsegs && l + 64 < sizeof segsdesc; i++)
			l += (size_t)snprintf(segsdesc + l, sizeof segsdesc - l, "%llx+%llx@%llx,", (unsigned long long)segs[i].vaddr,
					      (unsigned long long)segs[i].size, (unsigned long long)segs[i].paddr);
		record("table", "%s unreadable at %llx (kcore segments %s; image %llx at pa %llx)", tab, (unsigned long long)start,
		       segsdesc, (unsigned long long)image_va, (unsigned long long)image_pa);
		return;
	}
	int crcs_ok = cstart && kread(cstart, crcbuf, count * 4) == 0;
	/* The flags byte of entry i is read at fstart + i, as the kernel's find_symbol() does. */
	unsigned char *flags = fstart ? malloc(count + 1) : NULL;
	if (flags && kread(fstart, flags, count) < 0) {
		record("table", "%s flags unreadable at %llx", tab, (unsigned long long)fstart);
		free(flags);
		flags = NULL;
	}
	uint64_t lo = UINT64_MAX, hi = 0;
	for (size_t i = 0; i < count; i++) {
		uint64_t e = start + i * esize;
		if (prel) {
			int32_t f[3];
			memcpy(f, ents + i * esize, sizeof f);
			name_at[i] = e + 4 + (int64_t)f[1];
			ns_at[i] = f[2] ? e + 8 + (int64_t)f[2] : 0;
		} else {
			unsigned long f[3];
			memcpy(f, ents + i * esize, sizeof f);
			name_at[i] = f[1];
			ns_at[i] = f[2];
		}
		uint64_t both[2] = { name_at[i], ns_at[i] };
		for (int k = 0; k < 2; k++) {
			if (both[k] && both[k] < lo)
				lo = both[k];
			if (both[k] && both[k] > hi)
				hi = both[k];
		}
	}
	size_t slen = hi >= lo ? (size_t)(hi - lo) + 256 : 0;
	char *strs = slen && slen < (64u << 20) ? malloc(slen) : NULL;
	if (strs && kread(lo, strs, slen) < 0) {
		slen -= 255; /* the last string may end at a mapping's edge */
		if (kread(lo, strs, slen) < 0) {
			free(strs);
			strs = NULL;
		}
	}

	/* Full mode: index, name, CRC and namespace of every entry. Digest mode (default): per
	 * chunk of 64 entries, every CRC and one CRC-32 over "name\0namespace\0" of the chunk,
	 * which the host recomputes from the ELF: a seventh of the bytes on the serial line. */
	char batch[RECORD_MAX - 64];
	size_t blen = 0, chunk_start = 0;
	uint32_t names_crc = 0xffffffffu;
	for (size_t i = 0; i < count; i++) {
		char name[128] = "?", ns[64] = "", crcs[16] = "-", item[256];
		if (crcs_ok) {
			uint32_t crc;
			memcpy(&crc, crcbuf + 4 * i, 4);
			snprintf(crcs, sizeof crcs, "%08x", crc);
		}
		string_at(strs, lo, slen, name_at[i], name, sizeof name);
		if (ns_at[i])
			string_at(strs, lo, slen, ns_at[i], ns, sizeof ns);
		int len;
		if (full_table) {
			len = snprintf(item, sizeof item, "%zu,%s,%s,%s/", i, name, crcs, ns);
		} else {
			crc32_feed(&names_crc, name);
			crc32_feed(&names_crc, ns);
			len = snprintf(item, sizeof item, "%s,", crcs);
		}
		memcpy(batch + blen, item, (size_t)len + 1);
		blen += (size_t)len;
		int chunk_end = full_table ? (blen + 256 >= sizeof batch) : (i + 1 - chunk_start == 64);
		if (chunk_end || i + 1 == count) {
			if (full_table)
				record("ksym", "%s %s", tab, batch);
			else
				record("kdig", "%s %zu %08x %s", tab, chunk_start, ~names_crc, batch);
			blen = 0;
			chunk_start = i + 1;
			names_crc = 0xffffffffu;
		}
	}
	/* Flags: one hex digit per entry, 512 entries a record. */
	for (size_t i = 0; flags && i < count; i += 512) {
		char hexs[513];
		size_t k = 0;
		for (; k < 512 && i + k < count; k++)
			hexs[k] = "0123456789abcdef"[flags[i + k] & 15];
		hexs[k] = 0;
		record("kflags", "%s %zu %s", tab, i, hexs);
	}
	free(flags);
	free(ents);
	free(crcbuf);
	free(name_at);
	free(ns_at);
	free(strs);
}

/* ---- the shell for reproducing by hand (modverify repro, boot --shell) -------------- */

/* `-` and `_` are one character in module names (as modprobe has it). */
static void normalise(char *s)
{
	for (; *s; s++)
		if (*s == '-')
			*s = '_';
}

/* The plan's module that `arg` names: its module name, or its file with or without the
 * `N-` the initramfs puts before it and the `.ko`; a path is taken as it is (-2). */
static int find_module(const char *arg)
{
	char want[256];
	if (strchr(arg, '/'))
		return -2;
	snprintf(want, sizeof want, "%s", arg);
	char *ko = strstr(want, ".ko");
	if (ko)
		*ko = 0;
	normalise(want);
	for (int i = 0; i < nmods; i++) {
		char n[64];
		snprintf(n, sizeof n, "%s", mods[i].name);
		normalise(n);
		if (!strcmp(n, want))
			return i;
	}
	for (int i = 0; i < nmods; i++) {
		const char *base = strrchr(mods[i].file, '/');
		base = base ? base + 1 : mods[i].file;
		char f[256];
		size_t bl = strnlen(base, sizeof f - 1);
		memcpy(f, base, bl);
		f[bl] = 0;
		char *k = strstr(f, ".ko");
		if (k)
			*k = 0;
		normalise(f);
		const char *dash = strchr(f, '_');
		if (!strcmp(f, want) || (dash && !strcmp(dash + 1, want)))
			return i;
	}
	return -1;
}

/* The kernel's messages as dmesg prints them, `[seconds.micros] text`: every one (all), or
 * those since the last call. */
static void print_kmsg(int all)
{
	static int fd = -1;
	if (all || fd < 0) {
		if (fd >= 0)
			close(fd);
		fd = open("/dev/kmsg", O_RDONLY | O_NONBLOCK);
		if (fd < 0) {
			printf("dmesg: /dev/kmsg: %s\n", strerror(errno));
			return;
		}
		if (!all)
			lseek(fd, 0, SEEK_END);
	}
	char buf[2048];
	for (;;) {
		ssize_t n = read(fd, buf, sizeof buf - 1);
		if (n < 0) {
			if (errno == EPIPE)
				continue;
			break;
		}
		buf[n] = 0;
		char *msg = strchr(buf, ';');
		if (!msg)
			continue;
		unsigned long long usec = 0;
		sscanf(buf, "%*u,%*u,%llu", &usec);
		msg++;
		char *nl = strchr(msg, '\n');
		if (nl)
			*nl = 0;
		printf("[%5llu.%06llu] %s\n", usec / 1000000, usec % 1000000, msg);
	}
	fflush(stdout);
}

static int module_loaded(const char *name)
{
	char p[128], n[64];
	snprintf(n, sizeof n, "%s", name);
	normalise(n);
	snprintf(p, sizeof p, "/sys/module/%s/initstate", n);
	return access(p, F_OK) == 0;
}

static void shell_help(void)
{
	printf("modverify guest shell\n"
	       "  modules        the modules in this initramfs, by name, and whether each is loaded\n"
	       "  insmod NAME    load a module by its name (or a file path), as the agent did\n"
	       "  rmmod NAME     unload a module\n"
	       "  lsmod          the loaded modules\n"
	       "  dmesg          the kernel's messages (new ones also print after each command)\n"
	       "  cat FILE, ls [DIR]\n"
	       "  help\n"
	       "  poweroff       leave (also exit, or end of input): modverify prints what was loaded\n");
}

static void shell_insmod(const char *arg)
{
	int i = find_module(arg);
	const char *file = i >= 0 ? mods[i].file : arg;
	const char *name = i >= 0 ? mods[i].name : arg;
	int flags = i >= 0 ? mods[i].flags : 0;
	if (i == -1) {
		printf("insmod %s: no module of that name here (`modules` lists them)\n", arg);
		return;
	}
	int fd = open(file, O_RDONLY | O_CLOEXEC);
	int r = fd < 0 ? -1 : (int)syscall(SYS_finit_module, fd, "", flags);
	int e = r ? errno : 0;
	if (fd >= 0)
		close(fd);
	if (r)
		printf("insmod %s: %s (%s)\n", name, strerror(e), errno_name(e));
	else
		printf("insmod %s: loaded\n", name);
	fflush(stdout);
	record("shell", "insmod %s %d %d %s", name, r, e, r ? errno_name(e) : "-");
}

static void shell_rmmod(const char *arg)
{
	char n[64];
	int i = find_module(arg);
	snprintf(n, sizeof n, "%s", i >= 0 ? mods[i].name : arg);
	normalise(n);
	int r = (int)syscall(SYS_delete_module, n, O_NONBLOCK);
	int e = r ? errno : 0;
	if (r)
		printf("rmmod %s: %s (%s)\n", n, strerror(e), errno_name(e));
	else
		printf("rmmod %s: unloaded\n", n);
	fflush(stdout);
	record("shell", "rmmod %s %d %d %s", n, r, e, r ? errno_name(e) : "-");
}

static void shell_lsmod(void)
{
	FILE *f = fopen("/proc/modules", "r");
	char line[512];
	printf("%-24s %8s  %s\n", "Module", "Size", "Used by");
	while (f && fgets(line, sizeof line, f)) {
		char name[64], users[256] = "";
		unsigned long size;
		int refs;
		if (sscanf(line, "%63s %lu %d %255s", name, &size, &refs, users) >= 3) {
			if (!strcmp(users, "-"))
				users[0] = 0;
			size_t ul = strlen(users);
			if (ul && users[ul - 1] == ',')
				users[ul - 1] = 0;
			printf("%-24s %8lu  %d %s\n", name, size, refs, users);
		}
	}
	if (f)
		fclose(f);
}

/* A record leads with a newline, in case a kernel message left the line open; in the shell
 * the console holds only the shell's own lines, so records start lines by themselves. */
static const char *record_lead = "\n";

static void shell(void)
{
	char line[512];
	/* The host keeps its terminal cooked (it echoes what is typed): the guest must not echo
	 * it a second time. */
	if (cmdline_int("modverify.noecho", 0)) {
		struct termios t;
		if (tcgetattr(0, &t) == 0) {
			t.c_lflag &= ~(tcflag_t)(ECHO | ECHONL);
			tcsetattr(0, TCSANOW, &t);
		}
	}
	record_lead = "";
	printf("\n");
	shell_help();
	for (;;) {
		print_kmsg(0);
		printf("modverify# ");
		fflush(stdout);
		if (!fgets(line, sizeof line, stdin))
			break;
		char cmd[64] = "", arg[400] = "";
		sscanf(line, "%63s %399s", cmd, arg);
		if (!strcmp(cmd, "poweroff") || !strcmp(cmd, "exit") || !strcmp(cmd, "quit")) {
			break;
		} else if (!strcmp(cmd, "help") || !strcmp(cmd, "?")) {
			shell_help();
		} else if (!strcmp(cmd, "insmod") || !strcmp(cmd, "modprobe")) {
			if (!arg[0])
				printf("usage: insmod NAME\n");
			else
				shell_insmod(arg);
		} else if (!strcmp(cmd, "rmmod")) {
			if (!arg[0])
				printf("usage: rmmod NAME\n");
			else
				shell_rmmod(arg);
		} else if (!strcmp(cmd, "lsmod")) {
			shell_lsmod();
		} else if (!strcmp(cmd, "modules")) {
			for (int i = 0; i < nmods; i++)
				printf("  %-24s %-7s %s\n", mods[i].name,
				       module_loaded(mods[i].name) ? "loaded" : "-", mods[i].file);
		} else if (!strcmp(cmd, "dmesg")) {
			print_kmsg(1);
		} else if (!strcmp(cmd, "cat")) {
			int fd = open(arg, O_RDONLY);
			char buf[4096];
			ssize_t n;
			if (fd < 0)
				printf("cat %s: %s\n", arg, strerror(errno));
			fflush(stdout);
			while (fd >= 0 && (n = read(fd, buf, sizeof buf)) > 0)
				write_all(1, buf, (size_t)n);
			if (fd >= 0)
				close(fd);
		} else if (!strcmp(cmd, "ls")) {
			DIR *d = opendir(arg[0] ? arg : "/");
			struct dirent *e;
			if (!d)
				printf("ls %s: %s\n", arg[0] ? arg : "/", strerror(errno));
			while (d && (e = readdir(d)))
				if (e->d_name[0] != '.')
					printf("%s\n", e->d_name);
			if (d)
				closedir(d);
		} else if (cmd[0]) {
			printf("%s: not a command here (help lists them)\n", cmd);
		}
	}
	fflush(stdout);
	record("bye", "0");
	power_off();
}

int main(void)
{
	mount("proc", "/proc", "proc", 0, NULL);
	mount("sysfs", "/sys", "sysfs", 0, NULL);
	mount("devtmpfs", "/dev", "devtmpfs", 0, NULL);
	int fd = open("/dev/console", O_RDWR);
	if (fd >= 0) {
		dup2(fd, 0);
		dup2(fd, 1);
		dup2(fd, 2);
		console = 1;
	}
	/* Only emergencies on the console from now on: module messages come through
	 * /dev/kmsg inside records, and cannot interleave with them. */
	klogctl(8, NULL, 1);
	read_plan();
	kmsg = open("/dev/kmsg", O_RDONLY | O_NONBLOCK);
	if (kmsg >= 0)
		lseek(kmsg, 0, SEEK_END);

	int start = cmdline_int("modverify.start", 0);
	open_result_port();
	record("hello", "%d %d %s", nmods, start, layout);
	int probed = 0;
	for (int i = start; i < nmods; i++) {
		unsigned long before = kmsg_lines;
		int err = load(i);
		/* The first module handed over compressed tells whether this kernel decompresses:
		 * without CONFIG_MODULE_DECOMPRESS it answers EOPNOTSUPP, before 5.17 the unknown
		 * flag is EINVAL with no message (a version mismatch is EINVAL with one). Then stop:
		 * the host boots again with the modules decompressed. */
		if ((mods[i].flags & 4) && !probed) {
			probed = 1;
			if (err == EOPNOTSUPP || (err == EINVAL && kmsg_lines == before)) {
				record("nodecompress", "%d %d", i, err);
				power_off();
			}
		}
	}
	drain_kmsg("loads");
	/* With everything loaded: how much of the guest's memory the payload took. */
	{
		FILE *mi = fopen("/proc/meminfo", "r");
		char l[128];
		unsigned long v, total = 0, avail = 0;
		while (mi && fgets(l, sizeof l, mi)) {
			if (sscanf(l, "MemTotal: %lu", &v) == 1)
				total = v;
			else if (sscanf(l, "MemAvailable: %lu", &v) == 1)
				avail = v;
		}
		if (mi)
			fclose(mi);
		record("memory", "%lu %lu", total, avail);
	}

	find_bounds();
	find_image_pa();
	/* Without /proc/kcore (32-bit ARM has none) /dev/mem still serves, where the host
	 * gave its offset. */
	if (skip_table) {
		record("table", "skipped");
	} else if (kcore_open() == 0 || use_devmem) {
		export_table("ksymtab", "kcrctab", "kflagstab");
		/* 7.1 folded the GPL-only exports into __ksymtab (flagged in __kflagstab). */
		if (!ksym("__start___kflagstab") || ksym("__start___ksymtab_gpl"))
			export_table("ksymtab_gpl", "kcrctab_gpl", NULL);
	} else {
		record("table", "kcore unavailable %s", strerror(errno));
	}

	if (cmdline_int("modverify.shell", 0)) {
		record("done", "%d shell", nmods);
		shell();
	}
	/* Reverse order; a module still referenced (EAGAIN/EBUSY: crypto instances hold their
	 * templates until freed) gets a second try after everything else is gone. */
	static int busy[MAX_MODULES];
	for (int pass = 0; pass < 2; pass++) {
		for (int i = nmods - 1; i >= start; i--) {
			if (pass == 1 && !busy[i])
				continue;
			/* Said first: a module whose exit takes the kernel down is then named. */
			record("unloading", "%d %s", i, mods[i].name);
			int r = (int)syscall(SYS_delete_module, mods[i].name, O_NONBLOCK);
			int e = r ? errno : 0;
			if (pass == 0 && r && (e == EAGAIN || e == EBUSY)) {
				busy[i] = 1;
				continue;
			}
			if (pass == 0 && r && e == ENOENT)
				continue; /* it never loaded */
			drain_kmsg(mods[i].name);
			record("unload", "%d %s %d %d", i, mods[i].name, r, e);
		}
	}
	record("done", "%d", nmods);
	power_off();
	return 0;
}
