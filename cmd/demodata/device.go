package main

import (
	"math/rand/v2"
	"strconv"
	"strings"
	"time"
)

// device is one browser on one operating system, with everything the
// user-agent enrichment would derive from its user-agent string.
type device struct {
	agentName string
	// versions are the browser versions seen, newest first; {v} in ua is
	// replaced by the chosen one so the string matches agent_version.
	versions       []string
	versionWeights []float64
	ua             string
	osFamily       string
	osName         string
	osVersion      string // "" when the UA does not reveal it (Linux)
	osMajor        string
	mobile         bool
	// evergreen browsers ship a major version every four weeks; their
	// versions are shifted to the window's end so the data never looks
	// years out of date.
	evergreen bool
}

// versionsDated is when the evergreen versions in devices were current.
var versionsDated = time.Date(2024, 12, 1, 0, 0, 0, 0, time.UTC)

// shiftMajor adds n to the major version of v ("131.0.0.0" -> "133.0.0.0").
func shiftMajor(v string, n int) string {
	major, rest, _ := strings.Cut(v, ".")
	m, err := strconv.Atoi(major)
	if err != nil || m+n < 1 {
		return v
	}
	return strconv.Itoa(m+n) + "." + rest
}

// devices mirror a typical web audience; names follow ua-parser
// (hence "Mobile Safari" and "Chrome Mobile"), as Snowplow's enrichment does.
var devices = newWeighted([]device{
	{
		agentName: "Chrome", evergreen: true, versions: []string{"131.0.0.0", "130.0.0.0", "129.0.0.0"}, versionWeights: []float64{6, 3, 1},
		ua:       "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/{v} Safari/537.36",
		osFamily: "Windows", osName: "Windows 10", osVersion: "10", osMajor: "10",
	},
	{
		agentName: "Chrome", evergreen: true, versions: []string{"131.0.0.0", "130.0.0.0", "129.0.0.0"}, versionWeights: []float64{6, 3, 1},
		ua:       "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/{v} Safari/537.36",
		osFamily: "Mac OS X", osName: "Mac OS X 10.15.7", osVersion: "10.15.7", osMajor: "10",
	},
	{
		agentName: "Chrome", evergreen: true, versions: []string{"131.0.0.0", "130.0.0.0"}, versionWeights: []float64{7, 3},
		ua:       "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/{v} Safari/537.36",
		osFamily: "Linux", osName: "Linux",
	},
	{
		agentName: "Safari", versions: []string{"18.1", "18.0", "17.6"}, versionWeights: []float64{5, 3, 2},
		ua:       "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/{v} Safari/605.1.15",
		osFamily: "Mac OS X", osName: "Mac OS X 10.15.7", osVersion: "10.15.7", osMajor: "10",
	},
	{
		agentName: "Firefox", evergreen: true, versions: []string{"133.0", "132.0", "131.0"}, versionWeights: []float64{5, 3, 2},
		ua:       "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:{v}) Gecko/20100101 Firefox/{v}",
		osFamily: "Windows", osName: "Windows 10", osVersion: "10", osMajor: "10",
	},
	{
		agentName: "Firefox", evergreen: true, versions: []string{"133.0", "132.0"}, versionWeights: []float64{6, 4},
		ua:       "Mozilla/5.0 (X11; Linux x86_64; rv:{v}) Gecko/20100101 Firefox/{v}",
		osFamily: "Linux", osName: "Linux",
	},
	{
		agentName: "Firefox", evergreen: true, versions: []string{"133.0", "132.0"}, versionWeights: []float64{6, 4},
		ua:       "Mozilla/5.0 (Macintosh; Intel Mac OS X 10.15; rv:{v}) Gecko/20100101 Firefox/{v}",
		osFamily: "Mac OS X", osName: "Mac OS X 10.15", osVersion: "10.15", osMajor: "10",
	},
	{
		agentName: "Edge", evergreen: true, versions: []string{"131.0.0.0", "130.0.0.0"}, versionWeights: []float64{7, 3},
		ua:       "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/{v} Safari/537.36 Edg/{v}",
		osFamily: "Windows", osName: "Windows 10", osVersion: "10", osMajor: "10",
	},
	// iOS ships Safari with the OS, so the two versions move together.
	{
		agentName: "Mobile Safari", versions: []string{"18.1"}, versionWeights: []float64{1},
		ua:       "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/{v} Mobile/15E148 Safari/604.1",
		osFamily: "iOS", osName: "iOS 18.1", osVersion: "18.1", osMajor: "18", mobile: true,
	},
	{
		agentName: "Mobile Safari", versions: []string{"17.6"}, versionWeights: []float64{1},
		ua:       "Mozilla/5.0 (iPhone; CPU iPhone OS 17_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/{v} Mobile/15E148 Safari/604.1",
		osFamily: "iOS", osName: "iOS 17.6", osVersion: "17.6", osMajor: "17", mobile: true,
	},
	{
		agentName: "Chrome Mobile", evergreen: true, versions: []string{"131.0.0.0", "130.0.0.0"}, versionWeights: []float64{6, 4},
		ua:       "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/{v} Mobile Safari/537.36",
		osFamily: "Android", osName: "Android 14", osVersion: "14", osMajor: "14", mobile: true,
	},
	{
		agentName: "Chrome Mobile", evergreen: true, versions: []string{"131.0.0.0", "130.0.0.0"}, versionWeights: []float64{6, 4},
		ua:       "Mozilla/5.0 (Linux; Android 13; SM-A536B) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/{v} Mobile Safari/537.36",
		osFamily: "Android", osName: "Android 13", osVersion: "13", osMajor: "13", mobile: true,
	},
}, []float64{30, 10, 3, 8, 6, 2, 2, 9, 10, 4, 10, 6})

// Viewports are the browser's inner size, so smaller than common screen
// resolutions by the window chrome; phones report CSS pixels.
var (
	desktopViewports = newWeighted(
		[]string{"1920x969", "1440x900", "1536x730", "1366x657", "1728x992", "1512x823", "2560x1305", "1280x632"},
		[]float64{24, 14, 14, 10, 9, 9, 6, 4})
	mobileViewports = newWeighted(
		[]string{"390x664", "393x659", "430x739", "412x785", "360x648", "384x719"},
		[]float64{25, 15, 10, 20, 18, 12})
	browserLanguages = newWeighted(
		[]string{"en-US", "en-GB", "de-DE", "fr-FR", "es-ES", "pt-BR", "ja-JP", "nl-NL", "en", "zh-CN"},
		[]float64{42, 10, 10, 7, 6, 6, 5, 3, 7, 4})
)

// userDevice is the one browser a domain_userid cookie lives in.
type userDevice struct {
	d        *device
	version  string
	ua       string
	viewport string
	lang     string
}

// newUserDevice draws a browser, version, window size and language for a
// visitor seen up to end.
func newUserDevice(r *rand.Rand, end time.Time) userDevice {
	i := devices.index(r)
	d := &devices.items[i]
	v := newWeighted(d.versions, d.versionWeights).pick(r)
	if d.evergreen {
		v = shiftMajor(v, int(end.Sub(versionsDated)/(28*24*time.Hour)))
	}
	vp := desktopViewports
	if d.mobile {
		vp = mobileViewports
	}
	return userDevice{
		d:        d,
		version:  v,
		ua:       strings.ReplaceAll(d.ua, "{v}", v),
		viewport: vp.pick(r),
		lang:     browserLanguages.pick(r),
	}
}
