package access_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"productanalytics/shared/access"
)

// A caller token signed with the shared HS256 key lists the projects its
// bearer may read; any other project is not found, as GitLab answers for a
// project one cannot see.
func ExampleNewJWT() {
	key := "caller-token-key"
	checker := access.NewJWT(access.JWTOptions{
		Key: func(context.Context) (string, error) { return key, nil },
	})
	token, _ := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{
		"projects": []int{42},
		"exp":      time.Now().Add(time.Hour).Unix(),
	}).SignedString([]byte(key))
	h := http.Header{"Authorization": {"Bearer " + token}}

	fmt.Println(checker.CheckProject(context.Background(), h, 42))
	err := checker.CheckProject(context.Background(), h, 7)
	fmt.Println(errors.Is(err, access.ErrProjectNotFound))
	err = checker.CheckProject(context.Background(), http.Header{}, 42)
	fmt.Println(errors.Is(err, access.ErrUnauthenticated))
	// Output:
	// <nil>
	// true
	// true
}
