package cube

import (
	"strconv"
	"sync"
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

// TokenMinValidity is the least time a token has left when it is used, for
// a call or handed to a caller with include_token: a project's token is
// reused for its first TokenLifetime - TokenMinValidity (one minute), then
// minted anew.
const TokenMinValidity = 120 * time.Second

// maxTokens bounds the tokens kept; past it, expired ones make room, and
// failing that, all are dropped (each is cheap to mint again).
const maxTokens = 10000

// tokens keeps each project's Cube token for reuse. Cube keys its cache of
// generated SQL on the query and the whole security context, which is the
// token's payload, iat and exp included (server-core's CompilerApi.getSql,
// through the api-gateway's coerceForSqlQuery): a token minted per request
// made Cube generate the SQL of every request again (+1.4 ms at the median,
// a third of its throughput) and fill that cache with copies.
type tokens struct {
	mu  sync.Mutex
	all map[int64]token
}

type token struct {
	value   string
	key     string // the API key it is signed with
	expires time.Time
}

// get returns project's token signed with key, valid for at least
// TokenMinValidity after now, minting one when needed.
func (t *tokens) get(key string, project int64, issuer string, now time.Time) (string, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if tok, ok := t.all[project]; ok && tok.key == key && !now.Add(TokenMinValidity).After(tok.expires) {
		return tok.value, nil
	}
	value, err := MintToken(key, project, issuer, now)
	if err != nil {
		return "", err
	}
	if t.all == nil {
		t.all = map[int64]token{}
	}
	if len(t.all) >= maxTokens {
		for p, tok := range t.all {
			if !now.Before(tok.expires) {
				delete(t.all, p)
			}
		}
		if len(t.all) >= maxTokens {
			clear(t.all)
		}
	}
	t.all[project] = token{value: value, key: key, expires: now.Add(TokenLifetime)}
	return value, nil
}
