package dataset

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/bourse-dev/bourse/pkg/errs"
)

const corruptN = 1000

var (
	realOnce  sync.Once
	realDir   string
	realErr   error
	rawImages []byte // the decompressed real test-set files, for building corrupted copies
	rawLabels []byte
)

// realMNIST is the GoMNIST module's data directory, found the way Load finds it.
func realMNIST(t *testing.T) string {
	t.Helper()
	realOnce.Do(func() {
		if realDir, realErr = locateMNIST(); realErr != nil {
			return
		}
		if rawImages, realErr = gunzipFile(filepath.Join(realDir, MNISTTestImages)); realErr != nil {
			return
		}
		if rawLabels, realErr = gunzipFile(filepath.Join(realDir, MNISTTestLabels)); realErr != nil {
			return
		}
		// The damaged copies start from the first corruptN real test images: the loader's checks
		// do not depend on the count, and a smaller file keeps the cases quick under -race.
		rawImages = bytes.Clone(rawImages[:16+corruptN*784])
		binary.BigEndian.PutUint32(rawImages[4:], corruptN)
		rawLabels = bytes.Clone(rawLabels[:8+corruptN])
		binary.BigEndian.PutUint32(rawLabels[4:], corruptN)
	})
	if realErr != nil {
		t.Fatalf("the real MNIST files: %v", realErr)
	}
	return realDir
}

func gunzipFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		return nil, err
	}
	return io.ReadAll(zr)
}

func gz(t *testing.T, raw []byte) []byte {
	t.Helper()
	var b bytes.Buffer
	zw := gzip.NewWriter(&b)
	if _, err := zw.Write(raw); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// TestLoadRealMNIST reads the four real files: sizes, the first labels of each split (as published
// with the data set), pixel range, and that every digit occurs.
func TestLoadRealMNIST(t *testing.T) {
	dir := realMNIST(t)
	train, test, err := Load(MNIST, Options{MNISTDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name  string
		d     Dataset
		n     int
		first []int32
	}{
		{"train", train, 60000, []int32{5, 0, 4, 1, 9, 2, 1, 3, 1, 4}},
		{"test", test, 10000, []int32{7, 2, 1, 0, 4, 1, 4, 9, 5, 9}},
	} {
		d := c.d
		if d.N != c.n || d.Dim != 784 || d.Classes != 10 || len(d.X) != c.n*784 || len(d.Y) != c.n {
			t.Fatalf("%s: N %d Dim %d Classes %d len(X) %d len(Y) %d", c.name, d.N, d.Dim, d.Classes, len(d.X), len(d.Y))
		}
		for i, want := range c.first {
			if d.Y[i] != want {
				t.Fatalf("%s: label %d is %d, want %d", c.name, i, d.Y[i], want)
			}
		}
		var counts [10]int
		for _, y := range d.Y {
			counts[y]++
		}
		for digit, n := range counts {
			if n < c.n/20 {
				t.Fatalf("%s: digit %d occurs %d times", c.name, digit, n)
			}
		}
		var lo, hi float32 = 1, 0
		for _, v := range d.X[:min(d.N, 10000)*d.Dim] {
			lo, hi = min(lo, v), max(hi, v)
		}
		if lo != 0 || hi != 1 {
			t.Fatalf("%s: pixels in [%v, %v], want [0, 1]", c.name, lo, hi)
		}
	}

	// The default location (module cache) finds the same files, and Limit keeps a prefix.
	ltrain, ltest, err := Load(MNIST, Options{Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	if ltrain.N != 100 || ltest.N != 100 || !slices.Equal(ltest.X, test.X[:100*784]) {
		t.Fatalf("Limit 100: train %d test %d, or a different prefix", ltrain.N, ltest.N)
	}
}

// TestCorruptedMNIST writes damaged copies of the real test files and expects a FailedPrecondition
// naming the file and the damage for each, and never a partial dataset.
func TestCorruptedMNIST(t *testing.T) {
	realMNIST(t)
	withCount := func(raw []byte, n uint32) []byte {
		c := bytes.Clone(raw)
		binary.BigEndian.PutUint32(c[4:], n)
		return c
	}
	goodImages, goodLabels := gz(t, rawImages), gz(t, rawLabels)
	badLabel := bytes.Clone(rawLabels)
	badLabel[8+17] = 10
	wrongMagic := bytes.Clone(rawImages)
	binary.BigEndian.PutUint32(wrongMagic, 0x00000801)

	for _, tc := range []struct {
		name           string
		images, labels []byte
		want           string // in the error
		file           string // named by the error
	}{
		{"truncated gzip", goodImages[:len(goodImages)/2], goodLabels, "truncated", MNISTTestImages},
		{"truncated data", gz(t, rawImages[:len(rawImages)-100]), goodLabels, "truncated", MNISTTestImages},
		{"truncated header", gz(t, rawLabels[:6]), goodLabels, "truncated", MNISTTestImages},
		{"gzip checksum", flipTrailer(goodImages), goodLabels, "checksum", MNISTTestImages},
		{"wrong magic", gz(t, wrongMagic), goodLabels, "magic number 0x00000801", MNISTTestImages},
		{"labels magic", goodImages, goodImages, "magic number 0x00000803", MNISTTestLabels},
		{"not gzip", rawImages, goodLabels, "not a gzip file", MNISTTestImages},
		{"mismatched counts", goodImages, gz(t, withCount(rawLabels, corruptN-1)[:8+corruptN-1]), "holds 1000 images but", MNISTTestImages},
		{"count beyond data", goodImages, gz(t, withCount(rawLabels, corruptN+1)), "truncated", MNISTTestLabels},
		{"count below data", goodImages, gz(t, withCount(rawLabels, corruptN-1)), "data continues past", MNISTTestLabels},
		{"zero rows", gz(t, withCount(rawImages[:16], 0)), goodLabels, "dimension 0 is 0", MNISTTestImages},
		{"label not a digit", goodImages, gz(t, badLabel), "label 10 of sample 17", MNISTTestLabels},
		{"empty file", nil, goodLabels, "not a gzip file", MNISTTestImages},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			ip, lp := filepath.Join(dir, MNISTTestImages), filepath.Join(dir, MNISTTestLabels)
			if err := os.WriteFile(ip, tc.images, 0o644); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(lp, tc.labels, 0o644); err != nil {
				t.Fatal(err)
			}
			d, err := ReadMNIST(ip, lp, 0)
			if err == nil {
				t.Fatalf("accepted (%d samples)", d.N)
			}
			if errs.KindOf(err) != errs.KindFailedPrecondition || !strings.Contains(err.Error(), tc.want) ||
				!strings.Contains(err.Error(), tc.file) {
				t.Fatalf("error %q (kind %v), want FailedPrecondition naming %s with %q", err, errs.KindOf(err), tc.file, tc.want)
			}
			if d.N != 0 || d.X != nil {
				t.Fatal("a partial dataset came back with the error")
			}
		})
	}

	// The untouched copies load: the damage, not the copying, made the cases above fail.
	dir := t.TempDir()
	ip, lp := filepath.Join(dir, MNISTTestImages), filepath.Join(dir, MNISTTestLabels)
	if err := os.WriteFile(ip, goodImages, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(lp, goodLabels, 0o644); err != nil {
		t.Fatal(err)
	}
	if d, err := ReadMNIST(ip, lp, 0); err != nil || d.N != corruptN {
		t.Fatalf("intact copy: %d samples, %v", d.N, err)
	}
	if _, err := ReadMNIST(filepath.Join(dir, "missing.gz"), lp, 0); errs.KindOf(err) != errs.KindFailedPrecondition {
		t.Fatalf("missing file: %v", err)
	}

	// With a limit only the prefix is read: damage inside it is still an error, damage past it is
	// not looked at (documented on ReadMNIST).
	if err := os.WriteFile(ip, gz(t, rawImages[:16+100*784+5]), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadMNIST(ip, lp, 101); err == nil || !strings.Contains(err.Error(), "truncated") {
		t.Fatalf("limit 101 of a file cut in image 100: %v", err)
	}
	if d, err := ReadMNIST(ip, lp, 100); err != nil || d.N != 100 || d.Y[99] != int32(rawLabels[8+99]) {
		t.Fatalf("limit 100 of a file cut in image 100: %d samples, %v", d.N, err)
	}
}

// flipTrailer damages the gzip CRC-32 so the data decompresses but fails its checksum.
func flipTrailer(z []byte) []byte {
	c := bytes.Clone(z)
	c[len(c)-8] ^= 0xff
	return c
}

func TestLoadRejectsUnknownDataset(t *testing.T) {
	for name, field := range map[string]string{"cifar": "dataset", "": "dataset"} {
		if _, _, err := Load(name, Options{}); errs.KindOf(err) != errs.KindInvalidArgument || !strings.HasPrefix(err.Error(), field+":") {
			t.Errorf("Load(%q): %v", name, err)
		}
	}
	if _, _, err := Load(MNIST, Options{Limit: -1}); errs.KindOf(err) != errs.KindInvalidArgument || !strings.HasPrefix(err.Error(), "limit:") {
		t.Errorf("Limit -1: %v", err)
	}
}
