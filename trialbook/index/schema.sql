-- results/index.db: a derived, rebuildable cache of every indexed results tree (the Pier
-- results format's "SQLite index"). The files are the source of truth; `trialbook reindex
-- --full` recreates this database from them at any time. Query it with
-- `trialbook sql "SELECT ..."` (read-only).
--
-- Public tables and views (names as the Pier results format gives them where it names them):
--   all_jobs      one row per job of any layout (native, harbor/pier, velora, swebench, legacy, ...)
--   all_trials    one row per trial of those jobs
--   pier_jobs     view: the Pier format's pier_jobs columns, over jobs of the Pier/Harbor layouts
--   pier_trials   view: the Pier format's pier_trials columns, over trials of those jobs
--   experiments, runs, variants, tasks, trials
--                 views: the Pier format's legacy tables, over the jobs read by the legacy
--                 reader (copilot-experiments' old Python runs under results/)
-- trialbook's own tables are prefixed `all_` so that none clashes with those names.
-- Bookkeeping (internal, used by incremental reindex): index_meta, roots, trial_sources,
-- and the all_jobs columns from `root` on.

PRAGMA foreign_keys = ON;

CREATE TABLE IF NOT EXISTS index_meta (
    key   TEXT PRIMARY KEY,
    value TEXT
);

-- One row per indexed root directory (a block's jobs dir, a Harbor `jobs/`, a
-- `Trajectory_results/`, ...). `watch` is a JSON list of [dir, mtime_ns]: when none of
-- those directories changed, the root's list of jobs is reused without asking the reader.
CREATE TABLE IF NOT EXISTS roots (
    root     TEXT PRIMARY KEY,   -- absolute path
    layout   TEXT NOT NULL,      -- reader name (native, harbor, velora, ...)
    watch    TEXT NOT NULL DEFAULT '[]',
    indexed_at TEXT
);

CREATE TABLE IF NOT EXISTS all_jobs (
    job_name     TEXT PRIMARY KEY,  -- the job's name; `name@<hash>` when two dirs share a name
    job_dir      TEXT NOT NULL UNIQUE,
    layout       TEXT NOT NULL,
    started_at   TEXT,              -- ISO 8601, as the job's files give it
    finished_at  TEXT,
    n_trials     INTEGER,           -- counted trials: finished, not cancelled
    success_rate REAL,              -- resolved / n_trials (error outcomes in the denominator)
    status       TEXT,              -- job status from its files (completed, running, cancelled, ...)
    run_id       TEXT,              -- summary.json run_id
    experiment   TEXT,              -- summary.json experiment (block name for native jobs)
    n_trials_listed INTEGER,        -- every trial listed, running and cancelled ones included
    n_errors     INTEGER,           -- trials with an error outcome
    -- bookkeeping for incremental reindex
    root         TEXT REFERENCES roots(root) ON DELETE CASCADE,
    job_files    TEXT NOT NULL DEFAULT '',  -- newline-separated files of the job level
    job_sig      TEXT NOT NULL DEFAULT '',  -- their size:mtime_ns signatures
    watch        TEXT NOT NULL DEFAULT '[]', -- JSON [dir, mtime_ns] of the dirs holding trials
    indexed_at   TEXT
);

CREATE TABLE IF NOT EXISTS all_trials (
    id            INTEGER PRIMARY KEY,
    job_name      TEXT NOT NULL REFERENCES all_jobs(job_name) ON DELETE CASCADE ON UPDATE CASCADE,
    variant_slug  TEXT NOT NULL,     -- variant name (agent configuration)
    task_slug     TEXT NOT NULL,
    trial_name    TEXT NOT NULL,
    attempt       INTEGER NOT NULL,  -- 1-based attempt of (variant, task)
    success       INTEGER,           -- 1 resolved, 0 any other outcome, NULL unfinished
    outcome       TEXT,              -- resolved | unresolved | agent_error | timeout |
                                     -- verifier_error | infra_error | cancelled | NULL (running)
    reward        REAL,
    n_turns       INTEGER,
    n_tool_calls  INTEGER,
    total_tokens  INTEGER,
    cost_usd      REAL,
    aiu           REAL,
    model         TEXT,
    error         TEXT,              -- exception "Type: message", or the reason of an error outcome
    duration_s    REAL,
    agent         TEXT,
    prompt_tokens INTEGER,
    completion_tokens INTEGER,
    cached_tokens INTEGER,
    started_at    TEXT,
    finished_at   TEXT,
    trial_path    TEXT NOT NULL      -- the trial's directory (or file) as the reader gave it
);
CREATE INDEX IF NOT EXISTS all_trials_job ON all_trials(job_name, task_slug, variant_slug, attempt, trial_name);
CREATE INDEX IF NOT EXISTS all_trials_path ON all_trials(job_name, trial_path);

-- One row per trial path: the files whose (size, mtime_ns) decide whether it is read again.
CREATE TABLE IF NOT EXISTS trial_sources (
    job_name TEXT NOT NULL REFERENCES all_jobs(job_name) ON DELETE CASCADE ON UPDATE CASCADE,
    path     TEXT NOT NULL,
    files    TEXT NOT NULL,   -- newline-separated absolute paths
    sig      TEXT NOT NULL,   -- comma-separated size:mtime_ns (or - for a missing file)
    identity TEXT,            -- what the reader needs of this trial to read its siblings (JSON), if anything
    PRIMARY KEY (job_name, path)
) WITHOUT ROWID;

-- Pier format: pier_jobs(job_name PK, job_dir, started_at, finished_at, n_trials, success_rate, status)
CREATE VIEW IF NOT EXISTS pier_jobs AS
    SELECT job_name, job_dir, started_at, finished_at, n_trials, success_rate, status
    FROM all_jobs WHERE layout IN ('harbor', 'pier', 'copilot');

-- Pier format: pier_trials(id PK, job_name, variant_slug, task_slug, trial_name, success, status,
--                       n_turns, n_tool_calls, total_tokens, aiu, model, error)
-- `status` is the trial's outcome.
CREATE VIEW IF NOT EXISTS pier_trials AS
    SELECT t.id, t.job_name, t.variant_slug, t.task_slug, t.trial_name, t.success,
           t.outcome AS status, t.n_turns, t.n_tool_calls, t.total_tokens, t.aiu, t.model, t.error
    FROM all_trials t JOIN all_jobs j ON j.job_name = t.job_name
    WHERE j.layout IN ('harbor', 'pier', 'copilot');

-- The Pier format's legacy tables (old Python runs: results/<experiment>/<run>/...), as views
-- over the jobs the legacy reader produced: one legacy run = one job.
CREATE VIEW IF NOT EXISTS experiments AS
    SELECT COALESCE(experiment, job_name) AS experiment, COUNT(*) AS n_runs,
           SUM(n_trials) AS n_trials, MIN(started_at) AS first_started_at,
           MAX(finished_at) AS last_finished_at
    FROM all_jobs WHERE layout = 'legacy' GROUP BY COALESCE(experiment, job_name);

CREATE VIEW IF NOT EXISTS runs AS
    SELECT run_id, COALESCE(experiment, job_name) AS experiment, job_name, job_dir,
           started_at, finished_at, status, n_trials, success_rate
    FROM all_jobs WHERE layout = 'legacy';

CREATE VIEW IF NOT EXISTS variants AS
    SELECT j.run_id, t.job_name, t.variant_slug AS variant, MAX(t.agent) AS agent,
           MAX(t.model) AS model,
           SUM(t.outcome IS NOT NULL AND t.outcome <> 'cancelled') AS n_trials,
           SUM(t.success) AS n_success,
           1.0 * SUM(t.success) / NULLIF(SUM(t.outcome IS NOT NULL AND t.outcome <> 'cancelled'), 0)
               AS success_rate
    FROM all_trials t JOIN all_jobs j ON j.job_name = t.job_name
    WHERE j.layout = 'legacy' GROUP BY t.job_name, t.variant_slug;

CREATE VIEW IF NOT EXISTS tasks AS
    SELECT j.run_id, t.job_name, t.variant_slug AS variant, t.task_slug AS task,
           SUM(t.outcome IS NOT NULL AND t.outcome <> 'cancelled') AS n_trials,
           SUM(t.success) AS n_success,
           1.0 * SUM(t.success) / NULLIF(SUM(t.outcome IS NOT NULL AND t.outcome <> 'cancelled'), 0)
               AS success_rate
    FROM all_trials t JOIN all_jobs j ON j.job_name = t.job_name
    WHERE j.layout = 'legacy' GROUP BY t.job_name, t.variant_slug, t.task_slug;

CREATE VIEW IF NOT EXISTS trials AS
    SELECT t.id, j.run_id, t.job_name, t.variant_slug AS variant, t.task_slug AS task,
           t.attempt AS trial_num, t.trial_name, t.success, t.outcome, t.reward, t.n_turns,
           t.n_tool_calls, t.total_tokens, t.cost_usd, t.aiu, t.model, t.error, t.duration_s
    FROM all_trials t JOIN all_jobs j ON j.job_name = t.job_name
    WHERE j.layout = 'legacy';
