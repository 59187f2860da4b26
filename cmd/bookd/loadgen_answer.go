package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httputil"
	"net/textproto"

	"golang.org/x/net/http/httpguts"
)

// maxAnswer bounds the body of one answer the load generator reads;
// maxInterim the 1xx answers before it (as http.Transport's).
const (
	maxAnswer  = 1 << 20
	maxInterim = 5
)

// readAnswer reads one HTTP/1.x answer to a request of method from br:
// its status, its whole body and whether the connection may carry another
// request. Interim 1xx answers are skipped. It takes only what framing
// needs (Content-Length, Transfer-Encoding: chunked, Connection) and
// refuses what it does not understand, which http.ReadResponse would
// read differently; FuzzReadAnswer holds it to http.ReadResponse.
func readAnswer(br *bufio.Reader, method string) (status int, body []byte, keep bool, err error) {
	for interim := 0; ; interim++ {
		line, err := answerLine(br)
		if err != nil {
			return 0, nil, false, err
		}
		minor, code, ok := parseStatusLine(line)
		if !ok {
			return 0, nil, false, fmt.Errorf("malformed status line %q", line)
		}
		length, chunked, closing, keepAlive, err := answerHeaders(br)
		if err != nil {
			return 0, nil, false, err
		}
		if code >= 100 && code <= 199 {
			if code == http.StatusSwitchingProtocols || interim == maxInterim {
				return 0, nil, false, fmt.Errorf("interim answer %d", code)
			}
			continue
		}
		if chunked && minor == 0 {
			return 0, nil, false, errors.New("chunked in an HTTP/1.0 answer")
		}
		keep = !closing && (minor == 1 || keepAlive)
		switch {
		case method == http.MethodHead || code == http.StatusNoContent || code == http.StatusNotModified:
			return code, nil, keep, nil
		case chunked:
			body, err = readBounded(httputil.NewChunkedReader(br))
			if err == nil {
				err = skipTrailer(br)
			}
		case length >= 0:
			if length > maxAnswer {
				return 0, nil, false, fmt.Errorf("the body is over %d bytes", maxAnswer)
			}
			body = make([]byte, length)
			_, err = io.ReadFull(br, body)
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
		default: // the body runs to the end of the connection
			body, err = readBounded(br)
			keep = false
		}
		if err != nil {
			return 0, nil, false, err
		}
		return code, body, keep, nil
	}
}

// answerLine reads one header-section line without its CRLF; the line
// must end in CRLF or LF and be shorter than the reader's buffer.
func answerLine(br *bufio.Reader) ([]byte, error) {
	line, err := br.ReadSlice('\n')
	if err != nil {
		if errors.Is(err, io.EOF) && len(line) > 0 {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	line = line[:len(line)-1]
	if n := len(line); n > 0 && line[n-1] == '\r' {
		line = line[:n-1]
	}
	return line, nil
}

// parseStatusLine reads "HTTP/1.x NNN reason".
func parseStatusLine(line []byte) (minor, code int, ok bool) {
	if len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.")) || line[8] != ' ' || (len(line) > 12 && line[12] != ' ') {
		return 0, 0, false
	}
	switch line[7] {
	case '0':
	case '1':
		minor = 1
	default:
		return 0, 0, false
	}
	for _, c := range line[9:12] {
		if c < '0' || c > '9' {
			return 0, 0, false
		}
		code = code*10 + int(c-'0')
	}
	return minor, code, code >= 100
}

// answerHeaders reads the header section up to its empty line. length is
// -1 without Content-Length.
func answerHeaders(br *bufio.Reader) (length int64, chunked, closing, keepAlive bool, err error) {
	length = -1
	var lengthText string // the first Content-Length, as sent
	for {
		line, err := answerLine(br)
		if err != nil {
			return 0, false, false, false, err
		}
		if len(line) == 0 {
			if chunked && length >= 0 {
				return 0, false, false, false, errors.New("both Content-Length and chunked")
			}
			return length, chunked, closing, keepAlive, nil
		}
		i := bytes.IndexByte(line, ':')
		if i <= 0 || !httpguts.ValidHeaderFieldName(string(line[:i])) || !validHeaderValue(line[i+1:]) {
			return 0, false, false, false, fmt.Errorf("malformed header line %q", line)
		}
		name, value := line[:i], textproto.TrimBytes(line[i+1:]) // no CR or LF: validHeaderValue
		switch {
		case asciiEqualFold(name, "Content-Length"):
			if lengthText != "" {
				if string(value) != lengthText { // as net/http: the same text, or an error
					return 0, false, false, false, fmt.Errorf("two Content-Lengths, %q and %q", lengthText, value)
				}
				continue
			}
			n, ok := parseLength(value)
			if !ok {
				return 0, false, false, false, fmt.Errorf("bad Content-Length %q", value)
			}
			length, lengthText = n, string(value)
		case asciiEqualFold(name, "Transfer-Encoding"):
			if !asciiEqualFold(value, "chunked") || chunked {
				return 0, false, false, false, fmt.Errorf("unsupported Transfer-Encoding %q", value)
			}
			chunked = true
		case asciiEqualFold(name, "Connection"):
			for tok := range bytes.SplitSeq(value, []byte(",")) {
				tok = textproto.TrimBytes(tok)
				closing = closing || asciiEqualFold(tok, "close")
				keepAlive = keepAlive || asciiEqualFold(tok, "keep-alive")
			}
		}
	}
}

// parseLength reads a Content-Length: decimal digits only, below 2^62.
func parseLength(b []byte) (int64, bool) {
	if len(b) == 0 || len(b) > 18 {
		return 0, false
	}
	var n int64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	return n, true
}

// asciiEqualFold reports whether b is s, ignoring ASCII case only (no
// Unicode folding, which would take "chunKed" with a Kelvin sign).
func asciiEqualFold(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := range len(b) {
		x, y := b[i], s[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}

// readBounded reads r to its end, failing when that is over maxAnswer bytes.
func readBounded(r io.Reader) ([]byte, error) {
	body, err := io.ReadAll(io.LimitReader(r, maxAnswer+1))
	if err == nil && len(body) > maxAnswer {
		err = fmt.Errorf("the body is over %d bytes", maxAnswer)
	}
	return body, err
}

// validHeaderValue reports whether b has no control characters but tabs.
func validHeaderValue(b []byte) bool {
	for _, c := range b {
		if (c < ' ' && c != '\t') || c == 0x7f {
			return false
		}
	}
	return true
}

// skipTrailer reads the end of a chunked body after its last chunk: an
// empty CRLF line. A load generator takes no trailers, and refuses them.
func skipTrailer(br *bufio.Reader) error {
	line, err := br.ReadSlice('\n')
	if err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return err
	}
	if string(line) != "\r\n" {
		return fmt.Errorf("a trailer after the chunked body: %q", line)
	}
	return nil
}
