package mount

import (
	"bufio"
	"fmt"
	"io"
	"strings"
)

// PointsBelow reads a mountinfo table (proc(5)) once and returns the
// mount points strictly below dir, in table order. A mount point that carries
// several stacked mounts appears once per mount. The driver calls it once at
// start-up to count what an earlier instance published; requests never read
// the table.
func PointsBelow(r io.Reader, dir string) ([]string, error) {
	prefix := strings.TrimSuffix(dir, "/") + "/"
	var out []string
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64*1024), 1024*1024)
	for sc.Scan() {
		line := sc.Text()
		// 36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw
		fields := strings.SplitN(line, " ", 6)
		if len(fields) < 6 {
			return nil, fmt.Errorf("failed to parse mountinfo line %q: too few fields", line)
		}
		mp := unescape(fields[4])
		if strings.HasPrefix(mp, prefix) && len(mp) > len(prefix) {
			out = append(out, mp)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("failed to read mountinfo: %w", err)
	}
	return out, nil
}

// unescape decodes the octal escapes (\040 for a space, \011, \012, \134)
// the kernel writes in mountinfo paths.
func unescape(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) && isOctal(s[i+1]) && isOctal(s[i+2]) && isOctal(s[i+3]) {
			b.WriteByte((s[i+1]-'0')<<6 | (s[i+2]-'0')<<3 | (s[i+3] - '0'))
			i += 3
			continue
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func isOctal(c byte) bool { return c >= '0' && c <= '7' }
