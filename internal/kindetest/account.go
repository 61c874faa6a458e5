package kindetest

import (
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"time"
)

// defaultPageSize is used when page_size is absent. Kinde does not
// document its default; a small one makes clients that ignore has_more
// fail visibly.
const defaultPageSize = 10

// portalSubnavs are the documented values of subnav / sub_nav.
var portalSubnavs = []string{
	"profile", "payment_details", "plan_details", "plan_selection",
	"organization_details", "organization_payment_details",
	"organization_plan_details", "organization_plan_selection",
}

type planJSON struct {
	Key          string `json:"key"`
	Name         string `json:"name"`
	SubscribedOn string `json:"subscribed_on"`
}

type entitlementJSON struct {
	ID                  string `json:"id"`
	FixedCharge         *int   `json:"fixed_charge"`
	PriceName           string `json:"price_name"`
	UnitAmount          *int   `json:"unit_amount"`
	FeatureKey          string `json:"feature_key"`
	FeatureName         string `json:"feature_name"`
	EntitlementLimitMax *int   `json:"entitlement_limit_max"`
	EntitlementLimitMin *int   `json:"entitlement_limit_min"`
}

func toEntitlementJSON(e storedEntitlement) entitlementJSON {
	return entitlementJSON{
		ID:                  e.id,
		PriceName:           e.PriceName,
		FeatureKey:          e.FeatureKey,
		FeatureName:         e.FeatureName,
		EntitlementLimitMax: e.LimitMax,
		EntitlementLimitMin: e.LimitMin,
	}
}

type apiErrorBody struct {
	Errors []apiError `json:"errors"`
}

type apiError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

func apiErrors(code, message string) apiErrorBody {
	return apiErrorBody{Errors: []apiError{{Code: code, Message: message}}}
}

func (s *Server) handleEntitlements(w http.ResponseWriter, r *http.Request) {
	claims, ok := s.bearer(w, r)
	if !ok {
		return
	}
	q := r.URL.Query()
	pageSize := defaultPageSize
	if q.Has("page_size") {
		n, err := strconv.Atoi(q.Get("page_size"))
		if err != nil || n < 1 {
			writeJSON(w, http.StatusBadRequest, apiErrors("INVALID_PAGE_SIZE", "page_size must be a positive integer"))
			return
		}
		pageSize = n
	}
	sub, _ := claims["sub"].(string)
	s.mu.Lock()
	st := s.billing[sub]
	s.mu.Unlock()

	start := 0
	if after := q.Get("starting_after"); after != "" {
		i := slices.IndexFunc(st.entitlements, func(e storedEntitlement) bool { return e.id == after })
		if i < 0 {
			writeJSON(w, http.StatusBadRequest, apiErrors("INVALID_STARTING_AFTER", "starting_after names no entitlement of this user"))
			return
		}
		start = i + 1
	}
	end := min(start+pageSize, len(st.entitlements))
	ents := make([]entitlementJSON, 0, end-start)
	for _, e := range st.entitlements[start:end] {
		ents = append(ents, toEntitlementJSON(e))
	}
	var next *string
	if len(ents) > 0 {
		next = &ents[len(ents)-1].ID
	}
	plans := make([]planJSON, 0, len(st.plans))
	for _, p := range st.plans {
		plans = append(plans, planJSON{Key: p.Key, Name: p.Name, SubscribedOn: p.SubscribedOn.UTC().Format(time.RFC3339Nano)})
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"data": map[string]any{
			"org_code":     claims["org_code"],
			"plans":        plans,
			"entitlements": ents,
		},
		"metadata": map[string]any{
			"has_more":                 end < len(st.entitlements),
			"next_page_starting_after": next,
		},
	})
}

func (s *Server) handleEntitlement(w http.ResponseWriter, r *http.Request) {
	claims, ok := s.bearer(w, r)
	if !ok {
		return
	}
	key := r.PathValue("key")
	sub, _ := claims["sub"].(string)
	s.mu.Lock()
	st := s.billing[sub]
	s.mu.Unlock()
	i := slices.IndexFunc(st.entitlements, func(e storedEntitlement) bool { return e.FeatureKey == key })
	if i < 0 {
		writeJSON(w, http.StatusNotFound, apiErrors("ENTITLEMENT_NOT_FOUND", "the user's plan has no entitlement "+key))
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"data": map[string]any{
			"org_code":    claims["org_code"],
			"entitlement": toEntitlementJSON(st.entitlements[i]),
		},
	})
}

func (s *Server) handlePortalLink(w http.ResponseWriter, r *http.Request) {
	if _, ok := s.bearer(w, r); !ok {
		return
	}
	q := r.URL.Query()
	s.mu.Lock()
	s.portalLinkReqs = append(s.portalLinkReqs, cloneValues(q))
	s.mu.Unlock()
	for _, name := range []string{"subnav", "sub_nav"} {
		if v := q.Get(name); v != "" && !slices.Contains(portalSubnavs, v) {
			writeJSON(w, http.StatusBadRequest, apiErrors("INVALID_SUBNAV", name+" "+strconv.Quote(v)+" is not a portal page"))
			return
		}
	}
	returnURL := q.Get("return_url")
	if returnURL != "" {
		u, err := url.Parse(returnURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			writeJSON(w, http.StatusBadRequest, apiErrors("INVALID_RETURN_URL", "return_url must be an absolute http(s) URL"))
			return
		}
	}
	key := randomToken()
	s.mu.Lock()
	s.portalKeys[key] = &portalKey{returnURL: returnURL, expiresAt: s.now().Add(portalLinkTTL)}
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]string{"url": s.URL + "/portal_redirect?key=" + url.QueryEscape(key)})
}

// handlePortalRedirect stands in for the self-serve portal: it accepts the
// one-time key and sends the browser straight back to return_url. Tests
// change the user's plan with SetPlan to simulate what happened there.
func (s *Server) handlePortalRedirect(w http.ResponseWriter, r *http.Request) {
	key := r.URL.Query().Get("key")
	now := s.now()
	s.mu.Lock()
	pk := s.portalKeys[key]
	valid := pk != nil && !pk.used && now.Before(pk.expiresAt)
	if pk != nil {
		pk.used = true
	}
	s.mu.Unlock()
	if !valid {
		http.Error(w, "This portal link is invalid, expired or already used.", http.StatusBadRequest)
		return
	}
	if pk.returnURL == "" {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write([]byte("Kinde self-serve portal\n"))
		return
	}
	http.Redirect(w, r, pk.returnURL, http.StatusFound)
}
