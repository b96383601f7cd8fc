package deploy_test

import (
	"fmt"

	"productanalytics/shared/deploy"
)

func Example() {
	deps, err := deploy.Parse("cube-1=https://cube-1.example.com=cube-key-1,cube-2=https://cube-2.example.com=cube-key-2")
	if err != nil {
		panic(err)
	}
	placements, err := deploy.ParsePlacements("4=cube-1")
	if err != nil {
		panic(err)
	}
	r, err := deploy.NewRouter(deps, placements)
	if err != nil {
		panic(err)
	}
	for p := int64(1); p <= 5; p++ {
		fmt.Println(p, r.For(p).Name, r.For(p).URL)
	}
	// Output:
	// 1 cube-2 https://cube-2.example.com
	// 2 cube-2 https://cube-2.example.com
	// 3 cube-2 https://cube-2.example.com
	// 4 cube-1 https://cube-1.example.com
	// 5 cube-1 https://cube-1.example.com
}
