-- Searches and URL analyses: one analysis per user and normalized URL, a queue
-- for workers, and the searches that asked for them.
--
-- The app created an analysis after a findFirst, with no unique key, so two
-- requests made two; here (user_id, url) is unique and a search re-uses the
-- user's analysis of a URL (sql/queries/analyses.sql, upsert_analyses).
-- An analysis may be asked for by several searches while it runs, so a search
-- lists its analyses in search_analyses, each with the outcome of the run it
-- waited for; the search counts down pending_count and completes when its last
-- analysis does. Workers claim pending analyses with FOR UPDATE SKIP LOCKED;
-- an analysis left 'processing' by a worker that died is claimed again once its
-- claim is older than the timeout the worker passes (trampolin.analyses).

CREATE TABLE searches (
    id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id       uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    status        text NOT NULL DEFAULT 'pending',
    url_count     integer NOT NULL,
    pending_count integer NOT NULL,
    failed_count  integer NOT NULL DEFAULT 0,
    total_reach   bigint NOT NULL DEFAULT 0,
    completed_at  timestamptz,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT searches_status_check CHECK (status IN ('pending', 'completed', 'failed')),
    CONSTRAINT searches_counts_check CHECK (
        url_count > 0 AND pending_count BETWEEN 0 AND url_count
        AND failed_count BETWEEN 0 AND url_count - pending_count),
    CONSTRAINT searches_done_check CHECK ((status = 'pending') = (pending_count > 0)),
    CONSTRAINT searches_total_reach_check CHECK (total_reach >= 0)
);

CREATE INDEX searches_history_idx ON searches (user_id, created_at DESC, id DESC);

COMMENT ON TABLE searches IS 'A batch of URLs a user submitted (the app''s Search).';
COMMENT ON COLUMN searches.status IS
    'pending while an analysis runs; then completed, or failed when every analysis failed.';
COMMENT ON COLUMN searches.pending_count IS 'Analyses still running for this search.';
COMMENT ON COLUMN searches.total_reach IS 'Sum of the reach of its completed analyses.';

CREATE TRIGGER searches_set_updated_at BEFORE UPDATE ON searches
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

CREATE TABLE url_analyses (
    id                   uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id              uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    url                  text NOT NULL,
    status               text NOT NULL DEFAULT 'pending',
    results              jsonb,
    reach                bigint,
    error                text,
    attempts             integer NOT NULL DEFAULT 0,
    charged_period_start timestamptz,
    queued_at            timestamptz NOT NULL DEFAULT now(),
    claimed_at           timestamptz,
    finished_at          timestamptz,
    created_at           timestamptz NOT NULL DEFAULT now(),
    updated_at           timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT url_analyses_user_id_url_key UNIQUE (user_id, url),
    FOREIGN KEY (user_id, charged_period_start) REFERENCES usage_periods (user_id, period_start),
    CONSTRAINT url_analyses_status_check CHECK (
        status IN ('pending', 'processing', 'completed', 'failed')),
    CONSTRAINT url_analyses_url_check CHECK (url <> '' AND length(url) <= 2048),
    CONSTRAINT url_analyses_reach_check CHECK (reach >= 0),
    CONSTRAINT url_analyses_claimed_check CHECK (status <> 'processing' OR claimed_at IS NOT NULL)
);

-- The queue: only unfinished analyses, in the order they were asked for.
CREATE INDEX url_analyses_queue_idx ON url_analyses (queued_at)
    WHERE status IN ('pending', 'processing');

COMMENT ON TABLE url_analyses IS 'One analysis per user and normalized URL (the app''s UrlAnalysis).';
COMMENT ON COLUMN url_analyses.url IS 'Normalized: host and path, no scheme, www., query or trailing slash.';
COMMENT ON COLUMN url_analyses.status IS 'pending -> processing (claimed) -> completed | failed; a new search re-runs a finished one.';
COMMENT ON COLUMN url_analyses.results IS 'The worker''s results (JSON) of the last completed run.';
COMMENT ON COLUMN url_analyses.reach IS 'Total reach found by the last completed run; 0 gives the unit back.';
COMMENT ON COLUMN url_analyses.attempts IS 'How many times the current run was claimed (more than 1: a worker died or timed out).';
COMMENT ON COLUMN url_analyses.charged_period_start IS
    'The usage period charged one unit for the current run; NULL once the run is settled.';

CREATE TRIGGER url_analyses_set_updated_at BEFORE UPDATE ON url_analyses
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

CREATE TABLE search_analyses (
    search_id   uuid NOT NULL REFERENCES searches (id) ON DELETE CASCADE,
    analysis_id uuid NOT NULL REFERENCES url_analyses (id) ON DELETE CASCADE,
    position    integer NOT NULL,
    status      text NOT NULL DEFAULT 'pending',
    reach       bigint,
    PRIMARY KEY (search_id, analysis_id),
    CONSTRAINT search_analyses_status_check CHECK (status IN ('pending', 'completed', 'failed'))
);

CREATE INDEX search_analyses_open_idx ON search_analyses (analysis_id) WHERE status = 'pending';

COMMENT ON TABLE search_analyses IS 'The analyses of a search, in the order submitted, each with the outcome it waited for.';

ALTER TABLE usage_ledger
    ADD CONSTRAINT usage_ledger_search_id_fkey FOREIGN KEY (search_id)
        REFERENCES searches (id) ON DELETE SET NULL,
    ADD CONSTRAINT usage_ledger_analysis_id_fkey FOREIGN KEY (analysis_id)
        REFERENCES url_analyses (id) ON DELETE SET NULL;
