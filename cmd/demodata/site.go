package main

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"time"
)

// page is one URL of a site.
type page struct {
	path  string
	title string
	kind  string // drives which custom events fire there, e.g. "product"
	sku   string // product pages only
	price float64
}

// link is an outbound link: where it goes and the element carrying it.
type link struct {
	url       string
	elementID string
}

// customEvent is one kind of custom event a site's pages send.
type customEvent struct {
	name   string
	weight float64
	// kinds limits the event to pages of these kinds; empty means any page.
	kinds []string
	props func(r *rand.Rand, p *page) string
	// next is the path visitors usually go to afterwards (cart after
	// add_to_cart), so funnels show up in the data.
	next string
}

// site is a project's web property: its pages and how visitors behave on it.
type site struct {
	host    string
	appID   string
	docLang string
	rhythm  rhythm
	pages   []page
	// popularity ranks pages Zipf-like: a few hot pages, a long tail.
	popularity weighted[int]
	// landing is where sessions start: like popularity, more home page.
	landing          weighted[int]
	referrers        weighted[string] // "" is direct traffic (NULL)
	internalElements []string
	outbound         []link
	customEvents     []customEvent
	customEventRate  float64 // per page view
	userProps        func(r *rand.Rand) string
}

// siteTemplate builds a site; projects cycle through the templates.
type siteTemplate func(r *rand.Rand, host string) *site

var siteTemplates = []struct {
	host  string
	build siteTemplate
}{
	{"docs.example.com", docsSite},
	{"shop.example.com", shopSite},
	{"blog.example.com", blogSite},
}

// newSite gives the project at position idx (in -projects order) its site.
// Reused templates get a numbered host so every project stays recognisable.
func newSite(r *rand.Rand, projectID int64, idx int, start, end time.Time) *site {
	t := siteTemplates[idx%len(siteTemplates)]
	host := t.host
	if idx >= len(siteTemplates) {
		name, domain, _ := strings.Cut(host, ".")
		host = fmt.Sprintf("%s-%d.%s", name, projectID, domain)
	}
	s := t.build(r, host)
	s.appID = fmt.Sprintf("gitlab_project_%d", projectID)
	s.rhythm.start, s.rhythm.end = start, end
	pop := zipfWeights(len(s.pages), 1.05)
	s.popularity = newWeighted(seq(len(s.pages)), pop)
	land := append([]float64(nil), pop...)
	land[0] *= 3
	s.landing = newWeighted(seq(len(s.pages)), land)
	return s
}

// seq returns 0..n-1.
func seq(n int) []int {
	s := make([]int, n)
	for i := range s {
		s[i] = i
	}
	return s
}

// withTail appends the long-tail pages in a seeded order, so which tail
// page is more popular differs between projects and seeds.
func withTail(r *rand.Rand, hot, tail []page) []page {
	r.Shuffle(len(tail), func(i, j int) { tail[i], tail[j] = tail[j], tail[i] })
	return append(hot, tail...)
}

// titleCase turns "rate-limits" into "Rate limits".
func titleCase(slug string) string {
	s := strings.ReplaceAll(slug, "-", " ")
	return strings.ToUpper(s[:1]) + s[1:]
}

// standardReferrers mixes direct, search, social and other sites; shares
// are scaled per site by the weights passed.
func standardReferrers(direct, search, social, other float64) weighted[string] {
	items := []string{
		"",
		"https://www.google.com/", "https://www.bing.com/", "https://duckduckgo.com/", "https://www.ecosia.org/",
		"https://t.co/", "https://www.reddit.com/", "https://news.ycombinator.com/", "https://www.linkedin.com/",
		"https://github.com/", "https://stackoverflow.com/", "https://gitlab.com/",
	}
	weights := []float64{
		direct,
		search * 0.82, search * 0.09, search * 0.06, search * 0.03,
		social * 0.3, social * 0.3, social * 0.2, social * 0.2,
		other * 0.4, other * 0.35, other * 0.25,
	}
	return newWeighted(items, weights)
}

// searchQueries feed "search" custom events.
var searchQueries = []string{
	"install", "docker", "api token", "webhook", "backup", "upgrade", "pricing", "sso",
	"rate limit", "runner", "hoodie", "gift card", "returns", "size guide", "dark mode",
}

// docsSite is product documentation: install and reference pages dominate.
func docsSite(r *rand.Rand, host string) *site {
	hot := []page{
		{path: "/", title: "Example Docs", kind: "home"},
		{path: "/getting-started", title: "Getting started · Example Docs", kind: "doc"},
		{path: "/install", title: "Install · Example Docs", kind: "install"},
		{path: "/install/docker", title: "Install with Docker · Example Docs", kind: "install"},
		{path: "/api", title: "API reference · Example Docs", kind: "doc"},
		{path: "/install/linux", title: "Install on Linux · Example Docs", kind: "install"},
		{path: "/faq", title: "FAQ · Example Docs", kind: "doc"},
		{path: "/release-notes", title: "Release notes · Example Docs", kind: "doc"},
		{path: "/search", title: "Search · Example Docs", kind: "search"},
	}
	var tail []page
	for _, sec := range []string{"user", "admin", "api", "ci", "integrations", "security", "tutorials"} {
		for _, topic := range []string{"overview", "configuration", "troubleshooting", "permissions", "webhooks",
			"backup", "upgrade", "migration", "authentication", "rate-limits", "logging", "performance",
			"variables", "runners", "caching", "tokens"} {
			secTitle := titleCase(sec)
			if sec == "api" || sec == "ci" {
				secTitle = strings.ToUpper(sec)
			}
			tail = append(tail, page{
				path:  "/" + sec + "/" + topic,
				title: titleCase(topic) + " · " + secTitle + " · Example Docs",
				kind:  "doc",
			})
		}
	}
	return &site{
		host:             host,
		docLang:          "en",
		rhythm:           rhythm{utcOffset: time.Hour, growth: 0.15},
		pages:            withTail(r, hot, tail),
		referrers:        standardReferrers(25, 50, 8, 17),
		internalElements: []string{"sidebar-nav", "breadcrumb", "content-link", "next-page", "search-result"},
		outbound: []link{
			{"https://gitlab.com/example/example", "header-repo-link"},
			{"https://gitlab.com/example/example/-/issues/new", "feedback-issue-link"},
			{"https://forum.example.com/", "footer-forum"},
			{"https://status.example.com/", "footer-status"},
		},
		customEventRate: 0.12,
		customEvents: []customEvent{
			{name: "search", weight: 4, props: func(r *rand.Rand, _ *page) string {
				return jsonObject("query", oneOf(r, searchQueries...), "results", r.IntN(40))
			}},
			{name: "copy_code", weight: 5, kinds: []string{"install", "doc"}, props: func(r *rand.Rand, _ *page) string {
				return jsonObject("language", oneOf(r, "shell", "yaml", "json", "ruby", "go"), "block_index", r.IntN(6))
			}},
			{name: "feedback", weight: 1.5, props: func(r *rand.Rand, _ *page) string {
				return jsonObject("helpful", chance(r, 0.7))
			}},
			{name: "version_switch", weight: 0.7, props: func(r *rand.Rand, _ *page) string {
				return jsonObject("from", "17.6", "to", oneOf(r, "17.5", "17.4", "16.11"))
			}},
		},
		userProps: func(r *rand.Rand) string {
			return jsonObject(
				"plan", newWeighted([]string{"free", "premium", "ultimate"}, []float64{6, 3, 1}).pick(r),
				"role", oneOf(r, "developer", "developer", "maintainer", "admin"),
			)
		},
	}
}

// shopSite is an online shop: product pages, cart and checkout funnels.
func shopSite(r *rand.Rand, host string) *site {
	hot := []page{
		{path: "/", title: "Example Shop", kind: "home"},
		{path: "/collections/new", title: "New arrivals | Example Shop", kind: "collection"},
		{path: "/collections/sale", title: "Sale | Example Shop", kind: "collection"},
		{path: "/search", title: "Search | Example Shop", kind: "search"},
		{path: "/cart", title: "Your cart | Example Shop", kind: "cart"},
		{path: "/checkout", title: "Checkout | Example Shop", kind: "checkout"},
		{path: "/account", title: "Your account | Example Shop", kind: "account"},
		{path: "/help/shipping", title: "Shipping | Example Shop", kind: "help"},
	}
	var tail []page
	nouns := []string{"beanie", "hoodie", "t-shirt", "backpack", "sneakers", "jacket", "socks",
		"water-bottle", "cap", "scarf", "tote-bag", "notebook", "mug", "sweater"}
	for _, adj := range []string{"merino", "classic", "organic", "waterproof", "everyday", "lightweight", "recycled", "heritage"} {
		for _, noun := range nouns {
			tail = append(tail, page{
				path:  "/products/" + adj + "-" + noun,
				title: titleCase(adj) + " " + strings.ReplaceAll(noun, "-", " ") + " | Example Shop",
				kind:  "product",
				sku:   fmt.Sprintf("sku-%04d", 1000+len(tail)),
				price: math.Round(9+r.Float64()*150) - 0.01,
			})
		}
	}
	for _, noun := range nouns {
		tail = append(tail, page{path: "/collections/" + noun, title: titleCase(noun) + " | Example Shop", kind: "collection"})
	}
	return &site{
		host:             host,
		docLang:          "en-US",
		rhythm:           rhythm{utcOffset: -5 * time.Hour, growth: 0.3},
		pages:            withTail(r, hot, tail),
		referrers:        standardReferrers(35, 40, 20, 5),
		internalElements: []string{"product-card", "nav-menu", "breadcrumb", "related-products", "cart-button"},
		outbound: []link{
			{"https://www.instagram.com/exampleshop", "footer-instagram"},
			{"https://help.example.com/returns", "returns-policy-link"},
			{"https://www.trustpilot.com/review/shop.example.com", "reviews-badge"},
		},
		customEventRate: 0.15,
		customEvents: []customEvent{
			{name: "add_to_cart", weight: 6, kinds: []string{"product"}, props: func(r *rand.Rand, p *page) string {
				return jsonObject("product_id", p.sku, "price", p.price, "quantity", 1+geometric(r, 0.2))
			}, next: "/cart"},
			{name: "search", weight: 3, props: func(r *rand.Rand, _ *page) string {
				return jsonObject("query", oneOf(r, searchQueries...), "results", r.IntN(60))
			}},
			{name: "checkout_started", weight: 4, kinds: []string{"cart"}, props: func(r *rand.Rand, _ *page) string {
				return jsonObject("items", 1+geometric(r, 1), "currency", "USD")
			}, next: "/checkout"},
			{name: "purchase", weight: 5, kinds: []string{"checkout"}, props: func(r *rand.Rand, _ *page) string {
				return jsonObject("order_value", math.Round(logNormal(r, 60, 0.6)*100)/100, "currency", "USD")
			}},
			{name: "signup", weight: 1, props: func(r *rand.Rand, _ *page) string {
				return jsonObject("method", oneOf(r, "email", "email", "google", "apple"))
			}},
		},
		userProps: func(r *rand.Rand) string {
			return jsonObject(
				"loyalty_tier", newWeighted([]string{"bronze", "silver", "gold"}, []float64{6, 3, 1}).pick(r),
				"orders", geometric(r, 3),
				"newsletter", chance(r, 0.4),
			)
		},
	}
}

// blogSite is an engineering blog: spiky social traffic, short visits.
func blogSite(r *rand.Rand, host string) *site {
	hot := []page{
		{path: "/", title: "Example Engineering Blog", kind: "home"},
		{path: "/archive", title: "Archive · Example Engineering Blog", kind: "index"},
		{path: "/about", title: "About · Example Engineering Blog", kind: "about"},
	}
	var tail []page
	for _, year := range []string{"2023", "2024", "2025"} {
		for _, slug := range []string{"scaling-postgres", "our-ci-pipeline", "debugging-memory-leaks",
			"moving-to-arm", "incident-review", "zero-downtime-deploys", "feature-flags", "observability-on-a-budget",
			"rewriting-in-go", "caching-strategies"} {
			tail = append(tail, page{path: "/" + year + "/" + slug, title: titleCase(slug) + " · Example Engineering Blog", kind: "post"})
		}
	}
	for _, tag := range []string{"databases", "ci", "go", "performance", "culture", "security"} {
		tail = append(tail, page{path: "/tags/" + tag, title: "#" + tag + " · Example Engineering Blog", kind: "index"})
	}
	return &site{
		host:             host,
		docLang:          "en",
		rhythm:           rhythm{utcOffset: 0, growth: 0},
		pages:            withTail(r, hot, tail),
		referrers:        standardReferrers(20, 30, 40, 10),
		internalElements: []string{"post-link", "tag-link", "read-more", "nav-menu"},
		outbound: []link{
			{"https://gitlab.com/example", "author-profile"},
			{"https://x.com/example", "share-x"},
			{"https://www.linkedin.com/company/example", "share-linkedin"},
		},
		customEventRate: 0.1,
		customEvents: []customEvent{
			{name: "newsletter_signup", weight: 2, props: func(r *rand.Rand, _ *page) string {
				return jsonObject("source", oneOf(r, "footer", "inline", "popup"))
			}},
			{name: "share", weight: 2, kinds: []string{"post"}, props: func(r *rand.Rand, _ *page) string {
				return jsonObject("network", oneOf(r, "x", "linkedin", "mastodon", "copy_link"))
			}},
			{name: "scroll_depth", weight: 5, kinds: []string{"post"}, props: func(r *rand.Rand, _ *page) string {
				return jsonObject("percent", oneOf(r, 25, 50, 75, 100))
			}},
		},
		userProps: func(r *rand.Rand) string {
			return jsonObject("subscriber", true, "topics", oneOf(r, "databases", "ci", "go"))
		},
	}
}

// pickCustomEvent chooses a custom event that fits page p, or nil when none
// applies there.
func (s *site) pickCustomEvent(r *rand.Rand, p *page) *customEvent {
	total := 0.0
	for i := range s.customEvents {
		if s.customEvents[i].fits(p) {
			total += s.customEvents[i].weight
		}
	}
	if total == 0 {
		return nil
	}
	x := r.Float64() * total
	var last *customEvent
	for i := range s.customEvents {
		ce := &s.customEvents[i]
		if !ce.fits(p) {
			continue
		}
		if x < ce.weight {
			return ce
		}
		x -= ce.weight
		last = ce
	}
	return last // only reached through floating-point rounding
}

// fits reports whether the event is sent from page p.
func (ce *customEvent) fits(p *page) bool {
	if len(ce.kinds) == 0 {
		return true
	}
	for _, k := range ce.kinds {
		if k == p.kind {
			return true
		}
	}
	return false
}
