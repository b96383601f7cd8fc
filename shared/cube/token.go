package cube

import (
	"strconv"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// TokenLifetime is how long a Cube token is valid, as GitLab mints them.
const TokenLifetime = 180 * time.Second

// AppID is the Cube tenant of a project: its security context's appId, which
// the data model turns into the project's own database.
func AppID(projectID int64) string {
	return "gitlab_project_" + strconv.FormatInt(projectID, 10)
}

// tokenClaims is the payload GitLab signs for Cube: iat, exp, iss and the
// project's appId.
type tokenClaims struct {
	AppID string `json:"appId"`
	jwt.RegisteredClaims
}

// MintToken signs the HS256 token that lets its bearer query one project's
// data in Cube, and nothing else.
func MintToken(key string, projectID int64, issuer string, now time.Time) (string, error) {
	claims := tokenClaims{
		AppID: AppID(projectID),
		RegisteredClaims: jwt.RegisteredClaims{
			IssuedAt:  jwt.NewNumericDate(now),
			ExpiresAt: jwt.NewNumericDate(now.Add(TokenLifetime)),
			Issuer:    issuer,
		},
	}
	return jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString([]byte(key))
}
