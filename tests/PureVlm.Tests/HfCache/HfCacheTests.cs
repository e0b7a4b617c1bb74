using System.Security.Cryptography;
using PureVlm.Adapters;
using PureVlm.Formats;
using PureVlm.Formats.Images;
using PureVlm.Runtime;
using PureVlm.Tests.Cli;
using Xunit;

namespace PureVlm.Tests.HfCache;

/// <summary>
/// Models as <c>huggingface-cli download</c> leaves them: <c>models--org--name/snapshots/{commit}/</c> whose files are
/// relative symlinks into <c>blobs/</c>, with <c>refs/main</c> naming the commit. HF_HUB_CACHE is process-wide, so these
/// share the console collection, which runs one test at a time.
/// </summary>
[Collection(ConsoleCollection.Name)]
public sealed class HfCacheTests : IDisposable
{
    const string RepoId = "purevlm-tests/paligemma-shapes";
    const string Commit = "0123456789abcdef0123456789abcdef01234567";
    static readonly string[] DemoFiles = ["config.json", "model.safetensors", "preprocessor_config.json", "tokenizer.model"];

    readonly string _root = Directory.CreateTempSubdirectory("purevlm-hfcache-").FullName;
    readonly string? _savedHubCache = Environment.GetEnvironmentVariable("HF_HUB_CACHE");
    readonly string? _savedHome = Environment.GetEnvironmentVariable("HF_HOME");

    public void Dispose()
    {
        Environment.SetEnvironmentVariable("HF_HUB_CACHE", _savedHubCache);
        Environment.SetEnvironmentVariable("HF_HOME", _savedHome);
        Directory.Delete(_root, recursive: true);
    }

    /// <summary>Lays out <paramref name="files"/> of <paramref name="source"/> as a cached snapshot; returns the snapshot folder.</summary>
    static string AddSnapshot(string hub, string repoId, string commit, string source, IEnumerable<string> files, string? branch = "main")
    {
        string repo = Path.Combine(hub, "models--" + repoId.Replace("/", "--"));
        string snapshot = Path.Combine(repo, "snapshots", commit);
        Directory.CreateDirectory(Path.Combine(repo, "blobs"));
        foreach (var name in files)
        {
            byte[] bytes = File.ReadAllBytes(Path.Combine(source, name));
            string blob = Convert.ToHexStringLower(SHA256.HashData(bytes));
            File.WriteAllBytes(Path.Combine(repo, "blobs", blob), bytes);
            string link = Path.Combine(snapshot, name);
            Directory.CreateDirectory(Path.GetDirectoryName(link)!);
            string up = string.Concat(Enumerable.Repeat("../", name.Count(c => c == '/') + 2));
            File.CreateSymbolicLink(link, up + "blobs/" + blob);
        }
        if (branch != null)
        {
            // A PR's revision "refs/pr/1" lives at refs/refs/pr/1, as huggingface_hub stores it.
            string refFile = Path.Combine(repo, "refs", branch);
            Directory.CreateDirectory(Path.GetDirectoryName(refFile)!);
            File.WriteAllText(refFile, commit); // huggingface_hub writes no newline
        }
        return snapshot;
    }

    string DemoHub()
    {
        string hub = Path.Combine(_root, "hub");
        AddSnapshot(hub, RepoId, Commit, TestPaths.DemoModel, [.. DemoFiles, "samples/04-red-circle.png"]);
        return hub;
    }

    static Demo.DemoModelTests.Sample Sample(string image, string prompt) =>
        Demo.DemoModelTests.Samples.Single(s => s.Image == image && s.Prompt == prompt);

    [Fact]
    public void A_snapshot_folder_of_symlinks_loads_and_answers()
    {
        string snapshot = Path.Combine(DemoHub(), "models--purevlm-tests--paligemma-shapes", "snapshots", Commit);
        Assert.NotNull(new FileInfo(Path.Combine(snapshot, "model.safetensors")).LinkTarget);
        using var model = VlmModel.Load(snapshot);
        var image = ImageLoader.Load(Path.Combine(snapshot, "samples", "04-red-circle.png"));
        foreach (var prompt in new[] { "caption en", "answer en how many shapes?", "detect circle" })
            Assert.Equal(Sample("04-red-circle.png", prompt).Expected, model.Generate(image, prompt).Text);
    }

    [Fact]
    public void A_repo_id_resolves_in_HF_HUB_CACHE_at_main_or_a_revision()
    {
        string hub = DemoHub();
        Environment.SetEnvironmentVariable("HF_HUB_CACHE", hub);
        string expected = Path.Combine(hub, "models--purevlm-tests--paligemma-shapes", "snapshots", Commit);
        Assert.Equal(expected, PureVlm.Formats.HfCache.ResolveModel(RepoId));
        Assert.Equal(expected, PureVlm.Formats.HfCache.ResolveModel(RepoId, Commit));

        using var model = VlmModel.Load(RepoId, revision: "main");
        Assert.Equal(expected, model.Directory);
        var image = ImageLoader.Load(Path.Combine(expected, "samples", "04-red-circle.png"));
        Assert.Equal(Sample("04-red-circle.png", "caption en").Expected, model.Generate(image, "caption en").Text);
    }

    [Fact]
    public void HF_HOME_hub_is_the_cache_without_HF_HUB_CACHE_and_a_branch_picks_its_snapshot()
    {
        string home = Path.Combine(_root, "home");
        AddSnapshot(Path.Combine(home, "hub"), RepoId, Commit, TestPaths.DemoModel, DemoFiles);
        const string other = "fedcba9876543210fedcba9876543210fedcba98";
        AddSnapshot(Path.Combine(home, "hub"), RepoId, other, TestPaths.DemoModel, DemoFiles, branch: "refs/pr/1");
        Environment.SetEnvironmentVariable("HF_HUB_CACHE", null);
        Environment.SetEnvironmentVariable("HF_HOME", home);
        Assert.Equal(Path.Combine(home, "hub"), PureVlm.Formats.HfCache.HubDirectory());
        Assert.EndsWith(Commit, PureVlm.Formats.HfCache.ResolveModel(RepoId));
        Assert.EndsWith(other, PureVlm.Formats.HfCache.ResolveModel(RepoId, "refs/pr/1"));
        using var model = LoadedModel.Load(RepoId);
        Assert.Equal("paligemma", model.Config.ModelType);
    }

    [Fact]
    public void A_missing_repo_or_revision_is_one_line_saying_where_it_looked()
    {
        string hub = DemoHub();
        Environment.SetEnvironmentVariable("HF_HUB_CACHE", hub);
        var missing = Assert.Throws<InvalidModelFileException>(() => VlmModel.Load("google/paligemma2-3b-pt-224"));
        Assert.Contains(Path.Combine(hub, "models--google--paligemma2-3b-pt-224"), missing.Message);
        Assert.Contains("huggingface-cli download google/paligemma2-3b-pt-224", missing.Message);
        var revision = Assert.Throws<InvalidModelFileException>(() => PureVlm.Formats.HfCache.ResolveModel(RepoId, "v2"));
        Assert.Contains("revision 'v2'", revision.Message);
        Assert.Contains(Commit, revision.Message); // the snapshots that are there
        Assert.Throws<InvalidModelFileException>(() => PureVlm.Formats.HfCache.ResolveModel(RepoId, "../../.."));
        Assert.Throws<InvalidModelFileException>(() => PureVlm.Formats.HfCache.ResolveModel(TestPaths.DemoModel, "main"));
        foreach (var e in new Exception[] { missing, revision }) Assert.DoesNotContain('\n', e.Message);
    }

    [Fact]
    public void The_cli_and_weights_tools_take_a_repo_id()
    {
        string hub = DemoHub();
        Environment.SetEnvironmentVariable("HF_HUB_CACHE", hub);
        string image = Path.Combine(hub, "models--purevlm-tests--paligemma-shapes", "snapshots", Commit, "samples", "04-red-circle.png");
        var o = new StringWriter();
        var e = new StringWriter();
        int code = PureVlm.Cli.Program.Run(["run", "--model", RepoId, "--revision", "main", "--image", image, "--prompt", "caption en"], o, e);
        Assert.True(code == 0, e.ToString());
        Assert.Equal(Sample("04-red-circle.png", "caption en").Expected + Environment.NewLine, o.ToString());

        o = new StringWriter();
        code = PureVlm.WeightsTools.Program.Run(["inspect", RepoId], o, e);
        Assert.True(code == 0, e.ToString());
        Assert.Contains("files: 1", o.ToString());
    }

    [Fact]
    public void An_adapter_of_symlinks_loads()
    {
        string fixture = TestPaths.Fixture("paligemma-tiny");
        string adapter = AddSnapshot(Path.Combine(_root, "hub"), "purevlm-tests/lora", Commit, Path.Combine(fixture, "lora", "text"),
            ["adapter_config.json", "adapter_model.safetensors"]);
        using var model = LoadedModel.Load(fixture);
        Assert.NotEmpty(LoraAdapter.Load(adapter, model).Name);
    }
}
