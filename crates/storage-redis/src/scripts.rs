//! The Lua scripts that make a save visible, remove an object, clean up a failed save, and read
//! a manifest or a listing page in one step (each atomic in Redis).

use redis::Script;

// Lua shared by the commit and delete scripts: expire (or delete, with a zero grace) the `n`
// chunks of a generation whose keys start with `prefix`.
macro_rules! retire_fn {
    () => {
        r#"
local function retire(prefix, n, grace)
  for i = 0, n - 1 do
    if grace > 0 then
      redis.call('PEXPIRE', prefix .. i, grace)
    else
      redis.call('DEL', prefix .. i)
    end
  end
end
"#
    };
}

/// Makes a staged generation visible. KEYS: manifest, index, staging marker. ARGV: path,
/// generation, chunk count, size, chunk key prefix, grace (ms), done-marker TTL (ms).
/// Returns the commit time in ms.
const COMMIT_SCRIPT: &str = concat!(
    retire_fn!(),
    r#"
local marker = redis.call('GET', KEYS[3])
if marker and string.sub(marker, 1, 5) == 'done:' then
  return tonumber(string.sub(marker, 6))
end
if not marker or string.sub(marker, 1, 8) ~= 'staging:' then
  return redis.error_reply('STAGING_EXPIRED the staging marker of ' .. ARGV[1] .. ' expired before the commit')
end
local n = tonumber(ARGV[3])
local new = ARGV[5] .. ARGV[2] .. ':'
for i = 0, n - 1 do
  if redis.call('EXISTS', new .. i) == 0 then
    return redis.error_reply('STAGING_EXPIRED chunk ' .. i .. ' of ' .. ARGV[1] .. ' expired before the commit')
  end
end
for i = 0, n - 1 do
  redis.call('PERSIST', new .. i)
end
local old = redis.call('HMGET', KEYS[1], 'gen', 'chunks', 'modified')
local t = redis.call('TIME')
local ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
if old[1] and old[1] ~= ARGV[2] then
  retire(ARGV[5] .. old[1] .. ':', tonumber(old[2]) or 0, tonumber(ARGV[6]))
end
local previous = tonumber(old[3])
if previous and previous > ms then
  ms = previous
end
local stamp = string.format('%.0f', ms)
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'size', ARGV[4], 'modified', stamp, 'gen', ARGV[2], 'chunks', ARGV[3])
redis.call('ZADD', KEYS[2], 0, ARGV[1])
redis.call('SET', KEYS[3], 'done:' .. stamp, 'PX', ARGV[7])
return ms
"#
);

/// Removes an object. KEYS: manifest, index. ARGV: path, chunk key prefix, grace (ms).
const DELETE_SCRIPT: &str = concat!(
    retire_fn!(),
    r#"
local old = redis.call('HMGET', KEYS[1], 'gen', 'chunks')
if old[1] then
  retire(ARGV[2] .. old[1] .. ':', tonumber(old[2]) or 0, tonumber(ARGV[3]))
end
redis.call('DEL', KEYS[1])
redis.call('ZREM', KEYS[2], ARGV[1])
return 1
"#
);

/// Deletes a put's staging chunks and marker, unless the generation was committed. KEYS: staging
/// marker. ARGV: the generation's chunk key prefix (ending in `:`), number of chunks issued.
const ABORT_SCRIPT: &str = r#"
local marker = redis.call('GET', KEYS[1])
if not marker or string.sub(marker, 1, 8) ~= 'staging:' then
  return 0
end
for i = 0, tonumber(ARGV[2]) - 1 do
  redis.call('DEL', ARGV[1] .. i)
end
redis.call('DEL', KEYS[1])
return 1
"#;

/// The manifest and first chunk of an object, or nil. KEYS: manifest. ARGV: chunk key prefix.
/// A manifest missing a field returns a short array, which fails to decode (a backend error).
const GET_SCRIPT: &str = r#"
if redis.call('EXISTS', KEYS[1]) == 0 then
  return false
end
local m = redis.call('HMGET', KEYS[1], 'size', 'modified', 'gen', 'chunks')
local first = false
local chunks = tonumber(m[4])
if m[3] and chunks and chunks > 0 then
  first = redis.call('GET', ARGV[1] .. m[3] .. ':0')
end
return {m[1], m[2], m[3], m[4], first}
"#;

/// One page of a listing. KEYS: index. ARGV: lex min, lex max, page size, manifest key prefix.
/// Returns {paths scanned, last path scanned, paths without a manifest, {{path, size, ms}…}}.
const LIST_SCRIPT: &str = r#"
local paths = redis.call('ZRANGEBYLEX', KEYS[1], ARGV[1], ARGV[2], 'LIMIT', 0, tonumber(ARGV[3]))
local entries = {}
local dangling = 0
for _, path in ipairs(paths) do
  local m = redis.call('HMGET', ARGV[4] .. path, 'size', 'modified')
  if m[1] and m[2] then
    entries[#entries + 1] = {path, m[1], m[2]}
  else
    dangling = dangling + 1
  end
end
return {#paths, paths[#paths] or '', dangling, entries}
"#;

pub(crate) struct Scripts {
    pub(crate) commit: Script,
    pub(crate) delete: Script,
    pub(crate) abort: Script,
    pub(crate) get: Script,
    pub(crate) list: Script,
}

impl Scripts {
    pub(crate) fn new() -> Self {
        Scripts {
            commit: Script::new(COMMIT_SCRIPT),
            delete: Script::new(DELETE_SCRIPT),
            abort: Script::new(ABORT_SCRIPT),
            get: Script::new(GET_SCRIPT),
            list: Script::new(LIST_SCRIPT),
        }
    }

    pub(crate) fn all(&self) -> [(&'static str, &Script); 5] {
        [
            ("commit", &self.commit),
            ("delete", &self.delete),
            ("abort", &self.abort),
            ("get", &self.get),
            ("list", &self.list),
        ]
    }
}
