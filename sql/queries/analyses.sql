-- Searches and URL analyses: reserve, claim, complete, history (trampolin.analyses).
--
-- Life cycle of an analysis: pending -> processing (claimed by a worker) ->
-- completed | failed. A new search re-runs a finished analysis (back to
-- pending, charged again) and joins a running one (no new charge: the unit
-- charged for that run covers both searches).
--
-- Locks, always in this order, so that no two of these transactions wait on
-- each other in a circle: the analyses (by url, in start_search; by id, one at
-- a time, in complete and fail), then the open searches of one analysis (by
-- id), then the usage period (the charge or the give-back).

-- name: upsert_analyses :many
-- Create the user's analyses of these (normalized, distinct) URLs, or re-queue
-- the finished ones; returns the rows created or re-queued, which this search
-- pays for. A running analysis is locked (ON CONFLICT locks the row even when
-- its WHERE is false) but not returned: it is joined, not re-run. Rows are
-- taken in url order, so two searches lock shared analyses in the same order.
INSERT INTO url_analyses AS a (user_id, url)
SELECT %(user_id)s, u.url
FROM unnest(%(urls)s::text[]) AS u (url)
ORDER BY u.url
ON CONFLICT (user_id, url) DO UPDATE
SET status = 'pending', error = NULL, attempts = 0, queued_at = now(),
    claimed_at = NULL, finished_at = NULL
WHERE a.status IN ('completed', 'failed')
RETURNING a.id;

-- name: create_search :one
-- A new search of %(url_count)s URLs, all still to be analyzed.
INSERT INTO searches (user_id, url_count, pending_count)
VALUES (%(user_id)s, %(url_count)s, %(url_count)s)
RETURNING id;

-- name: add_search_analyses :exec
-- List the search's analyses in the order submitted, and remember on each
-- analysis that this search paid for (%(charged)s) which period was charged.
-- Runs after upsert_analyses in the same transaction, which holds every one
-- of these rows locked, so each is seen as it is now.
WITH items AS (
    INSERT INTO search_analyses (search_id, analysis_id, position)
    SELECT %(search_id)s, a.id, u.position
    FROM unnest(%(urls)s::text[]) WITH ORDINALITY AS u (url, position)
    JOIN url_analyses AS a ON a.user_id = %(user_id)s AND a.url = u.url
)
UPDATE url_analyses
SET charged_period_start = %(period_start)s
WHERE id = ANY (%(charged)s::uuid[]);

-- name: search :one
-- One search of one user with its analyses (analysis_id, url, status, reach)
-- in the order submitted; no row: unknown, or another user's.
SELECT s.id, s.user_id, s.status, s.url_count, s.pending_count, s.failed_count,
       s.total_reach, s.completed_at, s.created_at, s.updated_at, items.analyses
FROM searches AS s
CROSS JOIN LATERAL (
    SELECT coalesce(jsonb_agg(jsonb_build_object(
               'analysis_id', a.id, 'url', a.url, 'status', i.status, 'reach', i.reach)
               ORDER BY i.position), '[]') AS analyses
    FROM search_analyses AS i
    JOIN url_analyses AS a ON a.id = i.analysis_id
    WHERE i.search_id = s.id
) AS items
WHERE s.id = %(search_id)s AND s.user_id = %(user_id)s;

-- name: history :many
-- A user's searches, newest first, %(limit)s of them, after the search
-- %(before)s (keyset paging on (created_at, id): no row is skipped or shown
-- twice when searches are added meanwhile). A %(before)s that is not one of
-- the user's searches gives no rows.
SELECT s.id, s.user_id, s.status, s.url_count, s.pending_count, s.failed_count,
       s.total_reach, s.completed_at, s.created_at, s.updated_at, items.analyses
FROM searches AS s
CROSS JOIN LATERAL (
    SELECT coalesce(jsonb_agg(jsonb_build_object(
               'analysis_id', a.id, 'url', a.url, 'status', i.status, 'reach', i.reach)
               ORDER BY i.position), '[]') AS analyses
    FROM search_analyses AS i
    JOIN url_analyses AS a ON a.id = i.analysis_id
    WHERE i.search_id = s.id
) AS items
WHERE s.user_id = %(user_id)s
  AND (%(before)s::uuid IS NULL OR (s.created_at, s.id) < (
      SELECT b.created_at, b.id FROM searches AS b
      WHERE b.id = %(before)s::uuid AND b.user_id = %(user_id)s))
ORDER BY s.created_at DESC, s.id DESC
LIMIT %(limit)s;

-- name: claim :many
-- Up to %(limit)s analyses for a worker, oldest first: pending ones, and
-- processing ones whose claim is older than %(stale_after)s (their worker died
-- or gave up). SKIP LOCKED passes over rows another worker is claiming; a row
-- another worker claimed and committed after this statement began is re-checked
-- on its newest version and no longer qualifies. So no two workers hold the
-- same claim.
WITH picked AS (
    SELECT id
    FROM url_analyses
    WHERE status IN ('pending', 'processing')
      AND (status = 'pending' OR claimed_at < now() - %(stale_after)s::interval)
    ORDER BY queued_at, id
    LIMIT %(limit)s
    FOR UPDATE SKIP LOCKED
)
UPDATE url_analyses AS a
SET status = 'processing', claimed_at = now(), attempts = a.attempts + 1
FROM picked
WHERE a.id = picked.id
RETURNING a.id, a.user_id, a.url, a.status, a.results, a.reach, a.error, a.attempts,
          a.queued_at, a.claimed_at, a.finished_at, a.created_at, a.updated_at;

-- name: lock_processing :one
-- The analysis, locked, if it is being processed; no row: unknown or not
-- processing (finished by another worker, or re-queued).
SELECT id, user_id, charged_period_start
FROM url_analyses
WHERE id = %(analysis_id)s AND status = 'processing'
FOR UPDATE;

-- name: lock_open_searches :exec
-- Lock, in id order, the searches still waiting for this analysis: two
-- workers finishing analyses that share two searches take them in the same
-- order. A statement of its own, after lock_processing: its snapshot then
-- holds every search that joined the analysis before the lock was granted.
SELECT s.id
FROM searches AS s
WHERE s.id IN (
    SELECT search_id FROM search_analyses
    WHERE analysis_id = %(analysis_id)s AND status = 'pending')
ORDER BY s.id
FOR UPDATE;

-- name: finish :one
-- Settle a processing analysis as %(status)s ('completed' with %(results)s and
-- %(reach)s, or 'failed' with %(error)s, keeping the last completed results),
-- and count it down on every search waiting for it: a search whose last
-- analysis this was completes (or fails, when all of its analyses failed).
-- The searches' rows are locked already (lock_open_searches).
WITH analysis AS (
    UPDATE url_analyses
    SET status = %(status)s,
        results = CASE WHEN %(status)s = 'completed' THEN %(results)s ELSE results END,
        reach = CASE WHEN %(status)s = 'completed' THEN %(reach)s ELSE reach END,
        error = %(error)s,
        finished_at = now(),
        charged_period_start = NULL
    WHERE id = %(analysis_id)s AND status = 'processing'
    RETURNING id, user_id, url, status, results, reach, error, attempts,
              queued_at, claimed_at, finished_at, created_at, updated_at
),
items AS (
    UPDATE search_analyses AS i
    SET status = %(status)s, reach = %(reach)s
    FROM analysis
    WHERE i.analysis_id = analysis.id AND i.status = 'pending'
    RETURNING i.search_id
),
counted AS (
    UPDATE searches AS s
    SET pending_count = s.pending_count - 1,
        failed_count = s.failed_count + (%(status)s = 'failed')::integer,
        total_reach = s.total_reach + coalesce(%(reach)s, 0),
        status = CASE
            WHEN s.pending_count > 1 THEN 'pending'
            WHEN s.failed_count + (%(status)s = 'failed')::integer = s.url_count THEN 'failed'
            ELSE 'completed' END,
        completed_at = CASE WHEN s.pending_count = 1 THEN now() END
    FROM items
    WHERE s.id = items.search_id
)
SELECT * FROM analysis;

-- name: get :one
-- One analysis of one user; no row: unknown, or another user's.
SELECT id, user_id, url, status, results, reach, error, attempts,
       queued_at, claimed_at, finished_at, created_at, updated_at
FROM url_analyses
WHERE id = %(analysis_id)s AND user_id = %(user_id)s;
