module github.com/bourse-dev/bourse/services/payment

go 1.26.7

require github.com/bourse-dev/bourse/pkg v0.0.0

replace github.com/bourse-dev/bourse/pkg => ../../pkg
