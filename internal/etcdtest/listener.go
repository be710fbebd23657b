package etcdtest

import (
	"bufio"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// listens reports whether process pid holds the TCP listener of rawURL's
// loopback host:port, from /proc; ok is false where /proc cannot tell.
//
// Two test binaries may pick the same free port at once. The one whose
// member binds second exits, but until it does, its health checks reach
// the other binary's member and find it healthy: without this check the
// test would go on against another test's etcd.
func listens(pid int, rawURL string) (held, ok bool) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return false, false
	}
	host, port, err := net.SplitHostPort(u.Host)
	if err != nil {
		return false, false
	}
	ip := net.ParseIP(host).To4()
	p, err := strconv.Atoi(port)
	if err != nil || ip == nil {
		return false, false
	}
	// /proc/net/tcp writes an IPv4 address as the hex of its 32 bits in
	// the host's byte order (little-endian here), then the port in hex.
	local := fmt.Sprintf("%02X%02X%02X%02X:%04X", ip[3], ip[2], ip[1], ip[0], p)
	inode := listenerInode(local)
	if inode == "" {
		return false, false
	}
	fds, err := filepath.Glob(filepath.Join("/proc", strconv.Itoa(pid), "fd", "*"))
	if err != nil || len(fds) == 0 {
		return false, false
	}
	want := "socket:[" + inode + "]"
	for _, fd := range fds {
		if l, err := os.Readlink(fd); err == nil && l == want {
			return true, true
		}
	}
	return false, true
}

// listenerInode returns the inode of the listening socket bound to local
// (as /proc/net/tcp spells it), "" if there is none or /proc cannot tell.
func listenerInode(local string) string {
	f, err := os.Open("/proc/net/tcp")
	if err != nil {
		return ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode
		fs := strings.Fields(sc.Text())
		if len(fs) >= 10 && fs[1] == local && fs[3] == "0A" { // 0A: LISTEN
			return fs[9]
		}
	}
	return ""
}
