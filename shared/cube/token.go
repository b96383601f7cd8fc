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

// tokenClaims is the payload GitLab signs for Cube.
type tokenClaims struct {
	IssuedAt  int64  `json:"iat"`
	ExpiresAt int64  `json:"exp"`
	AppID     string `json:"appId"`
	Issuer    string `json:"iss,omitempty"`
}

func (c tokenClaims) GetExpirationTime() (*jwt.NumericDate, error) {
	return jwt.NewNumericDate(time.Unix(c.ExpiresAt, 0)), nil
}
func (c tokenClaims) GetIssuedAt() (*jwt.NumericDate, error) {
	return jwt.NewNumericDate(time.Unix(c.IssuedAt, 0)), nil
}
func (c tokenClaims) GetNotBefore() (*jwt.NumericDate, error) { return nil, nil }
func (c tokenClaims) GetIssuer() (string, error)              { return c.Issuer, nil }
func (c tokenClaims) GetSubject() (string, error)             { return "", nil }
func (c tokenClaims) GetAudience() (jwt.ClaimStrings, error)  { return nil, nil }

// MintToken signs the HS256 token that lets its bearer query one project's
// data in Cube, and nothing else.
func MintToken(key string, projectID int64, issuer string, now time.Time) (string, error) {
	claims := tokenClaims{
		IssuedAt:  now.Unix(),
		ExpiresAt: now.Add(TokenLifetime).Unix(),
		AppID:     AppID(projectID),
		Issuer:    issuer,
	}
	return jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString([]byte(key))
}
