using System.Text.RegularExpressions;

namespace PureVlm.Formats;

/// <summary>
/// Finds a model in the local Hugging Face hub cache, as <c>transformers</c> does with <c>local_files_only=True</c>:
/// never over the network. <c>snapshot_download</c> leaves <c>{cache}/models--{org}--{name}/snapshots/{commit}/</c>,
/// whose files are symlinks into <c>../../blobs/</c>, and <c>refs/{revision}</c> holding the commit a branch or tag
/// names.
/// </summary>
public static partial class HfCache
{
    // huggingface_hub's repo id rule: an optional namespace, then a name; letters, digits, '-', '_', '.'; no "--" or
    // ".." (which would be ambiguous in the cache's folder names or climb out of it).
    [GeneratedRegex(@"\A(?:[A-Za-z0-9][A-Za-z0-9._-]{0,95}/)?[A-Za-z0-9][A-Za-z0-9._-]{0,95}\z")]
    private static partial Regex RepoIdPattern();

    /// <summary>
    /// The hub cache folder: <c>HF_HUB_CACHE</c>, else <c>HF_HOME/hub</c>, else <c>XDG_CACHE_HOME/huggingface/hub</c>,
    /// else <c>~/.cache/huggingface/hub</c> (huggingface_hub's order; <c>~</c> in a variable is expanded as it does).
    /// </summary>
    public static string HubDirectory()
    {
        if (Env("HF_HUB_CACHE") is { } hub) return hub;
        if (Env("HF_HOME") is { } home) return Path.Combine(home, "hub");
        string cache = Env("XDG_CACHE_HOME") ?? Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".cache");
        return Path.Combine(cache, "huggingface", "hub");
    }

    /// <summary>True when <paramref name="text"/> has the shape of a hub repo id (<c>org/name</c> or <c>name</c>).</summary>
    public static bool IsRepoId(string text) => RepoIdPattern().IsMatch(text) && !text.Contains("--") && !text.Contains("..");

    /// <summary>
    /// A model folder for <paramref name="pathOrRepoId"/>: the folder itself when it exists (then
    /// <paramref name="revision"/> must be null), else the cached snapshot of that repo id at <paramref name="revision"/>
    /// (a branch or tag in <c>refs/</c>, or a commit hash; default <c>main</c>). Throws
    /// <see cref="InvalidModelFileException"/> saying where it looked.
    /// </summary>
    public static string ResolveModel(string pathOrRepoId, string? revision = null)
    {
        if (Directory.Exists(pathOrRepoId))
        {
            if (revision != null)
                throw new InvalidModelFileException($"{pathOrRepoId}: is a folder; a revision ('{revision}') applies only to a Hugging Face repo id such as google/paligemma2-3b-pt-224");
            return Path.GetFullPath(pathOrRepoId);
        }
        if (!IsRepoId(pathOrRepoId))
            throw new InvalidModelFileException($"{pathOrRepoId}: model folder not found (and not a Hugging Face repo id such as google/paligemma2-3b-pt-224)");
        return Snapshot(pathOrRepoId, revision ?? "main");
    }

    static string Snapshot(string repoId, string revision)
    {
        string hub = HubDirectory();
        string repo = Path.Combine(hub, "models--" + repoId.Replace("/", "--"));
        string where = $"not a folder, and not in the Hugging Face cache {hub} (looked for {repo}";
        string hint = $"download it with `huggingface-cli download {repoId}`, or set HF_HUB_CACHE or HF_HOME; nothing is fetched over the network";
        if (!Directory.Exists(repo)) throw new InvalidModelFileException($"{repoId}: {where}; {hint})");
        // A revision names a ref when refs/ has it (branches, tags, refs/pr/N), else it is taken as a commit hash, as
        // huggingface_hub does offline. Refs may hold slashes, so keep the file inside refs/.
        string refs = Path.Combine(repo, "refs");
        string refFile = Path.GetFullPath(Path.Combine(refs, revision));
        string commit = revision;
        if (refFile.StartsWith(Path.GetFullPath(refs) + Path.DirectorySeparatorChar, StringComparison.Ordinal) && File.Exists(refFile))
            commit = File.ReadAllText(refFile).Trim();
        string snapshots = Path.Combine(repo, "snapshots");
        if (commit.Length == 0 || !IsRepoId(commit) || commit.Contains('/') || !Directory.Exists(Path.Combine(snapshots, commit)))
        {
            string known = Directory.Exists(snapshots) ? string.Join(", ", Directory.EnumerateDirectories(snapshots).Select(Path.GetFileName).Order(StringComparer.Ordinal)) : "";
            throw new InvalidModelFileException(commit == revision
                ? $"{repoId}: revision '{revision}' is neither in {refs} nor a snapshot in {snapshots} (snapshots: {(known.Length == 0 ? "none" : known)}); {hint}"
                : $"{repoId}: {refFile} names commit '{commit}', which has no folder in {snapshots} (snapshots: {(known.Length == 0 ? "none" : known)}); {hint}");
        }
        return Path.Combine(snapshots, commit);
    }

    static string? Env(string name)
    {
        string? value = Environment.GetEnvironmentVariable(name);
        if (string.IsNullOrEmpty(value)) return null;
        return value == "~" || value.StartsWith("~/", StringComparison.Ordinal)
            ? Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), value.Length > 2 ? value[2..] : "")
            : value;
    }
}
