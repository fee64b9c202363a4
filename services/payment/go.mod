module github.com/bourse-dev/bourse/services/payment

go 1.26.7

require (
	github.com/bourse-dev/bourse/pkg v0.0.0
	github.com/stripe/stripe-go/v82 v82.5.1
)

replace github.com/bourse-dev/bourse/pkg => ../../pkg
