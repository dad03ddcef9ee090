//go:build linux

package capture

import "golang.org/x/sys/unix"

// syscallNumbers are the numbers raw mode files its syscall handlers under (x86-64).
var syscallNumbers = map[string]int{
	"write": unix.SYS_WRITE, "writev": unix.SYS_WRITEV, "sendto": unix.SYS_SENDTO, "sendmsg": unix.SYS_SENDMSG,
	"sendmmsg": unix.SYS_SENDMMSG, "read": unix.SYS_READ, "readv": unix.SYS_READV, "recvfrom": unix.SYS_RECVFROM,
	"recvmsg": unix.SYS_RECVMSG, "recvmmsg": unix.SYS_RECVMMSG, "socket": unix.SYS_SOCKET, "close": unix.SYS_CLOSE,
	"connect": unix.SYS_CONNECT, "accept": unix.SYS_ACCEPT, "accept4": unix.SYS_ACCEPT4, "clone": unix.SYS_CLONE,
	"clone3": unix.SYS_CLONE3, "fork": unix.SYS_FORK, "vfork": unix.SYS_VFORK, "dup": unix.SYS_DUP,
	"dup2": unix.SYS_DUP2, "dup3": unix.SYS_DUP3, "fcntl": unix.SYS_FCNTL,
}
