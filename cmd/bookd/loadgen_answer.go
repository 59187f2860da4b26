package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httputil"
	"strconv"
)

// maxAnswer bounds the body of one answer the load generator reads.
const maxAnswer = 1 << 20

// readAnswer reads one HTTP/1.x answer to a request of method from br:
// its status, its whole body and whether the connection may carry another
// request. Interim 1xx answers are skipped. It takes only what framing
// needs (Content-Length, Transfer-Encoding: chunked, Connection) and
// refuses what it does not understand, which http.ReadResponse would
// read differently; FuzzReadAnswer holds it to http.ReadResponse.
func readAnswer(br *bufio.Reader, method string) (status int, body []byte, keep bool, err error) {
	for {
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
			if code == http.StatusSwitchingProtocols {
				return 0, nil, false, errors.New("the server switched protocols")
			}
			continue
		}
		keep = !closing && (minor == 1 || keepAlive)
		switch {
		case method == http.MethodHead || code == http.StatusNoContent || code == http.StatusNotModified:
			return code, nil, keep, nil
		case chunked:
			body, err = io.ReadAll(io.LimitReader(httputil.NewChunkedReader(br), maxAnswer+1))
			if err == nil && len(body) > maxAnswer {
				err = fmt.Errorf("the body is over %d bytes", maxAnswer)
			}
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
			body, err = io.ReadAll(io.LimitReader(br, maxAnswer+1))
			if err == nil && len(body) > maxAnswer {
				err = fmt.Errorf("the body is over %d bytes", maxAnswer)
			}
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
		if i <= 0 || !validHeaderName(line[:i]) || !validHeaderValue(line[i+1:]) {
			return 0, false, false, false, fmt.Errorf("malformed header line %q", line)
		}
		name, value := line[:i], bytes.Trim(line[i+1:], " \t")
		switch {
		case bytes.EqualFold(name, []byte("Content-Length")):
			n, err := strconv.ParseInt(string(value), 10, 64)
			if err != nil || n < 0 || value[0] == '+' || (length >= 0 && n != length) {
				return 0, false, false, false, fmt.Errorf("bad Content-Length %q", value)
			}
			length = n
		case bytes.EqualFold(name, []byte("Transfer-Encoding")):
			if !bytes.EqualFold(value, []byte("chunked")) || chunked {
				return 0, false, false, false, fmt.Errorf("unsupported Transfer-Encoding %q", value)
			}
			chunked = true
		case bytes.EqualFold(name, []byte("Connection")):
			for tok := range bytes.SplitSeq(value, []byte(",")) {
				tok = bytes.Trim(tok, " \t")
				closing = closing || bytes.EqualFold(tok, []byte("close"))
				keepAlive = keepAlive || bytes.EqualFold(tok, []byte("keep-alive"))
			}
		}
	}
}

// validHeaderName reports whether b is an RFC 9110 token.
func validHeaderName(b []byte) bool {
	for _, c := range b {
		if c <= ' ' || c >= 0x7f || bytes.IndexByte([]byte(`"(),/:;<=>?@[\]{}`), c) >= 0 {
			return false
		}
	}
	return true
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

// skipTrailer reads the trailer section after a chunked body.
func skipTrailer(br *bufio.Reader) error {
	for {
		line, err := answerLine(br)
		if err != nil {
			return err
		}
		if len(line) == 0 {
			return nil
		}
	}
}
