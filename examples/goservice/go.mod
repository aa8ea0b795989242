module example.test/goservice

go 1.27

require github.com/julienschmidt/httprouter v1.3.0
