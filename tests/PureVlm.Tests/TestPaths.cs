namespace PureVlm.Tests;

/// <summary>Where the tests find their data: the copies in tests/data and the demo model in models/, never anything outside the repository.</summary>
public static class TestPaths
{
    /// <summary>The repository root (the folder holding PureVlm.sln), found by walking up from the test binary.</summary>
    public static string RepoRoot { get; } = FindRoot();

    /// <summary>tests/data, as copied into the test output folder.</summary>
    public static string Data => Path.Combine(AppContext.BaseDirectory, "data");

    /// <summary>A golden fixture folder: paligemma-tiny, paligemma2-tiny or gemma2-text-tiny.</summary>
    public static string Fixture(string name) => Path.Combine(Data, "fixtures", name);

    /// <summary>A tokenizer fixture folder: spm-tiny, gemma or gemma3.</summary>
    public static string TokenizerFixture(string name) => Path.Combine(Data, "tokenizer-fixtures", name);

    /// <summary>The embedded demo model.</summary>
    public static string DemoModel => Path.Combine(RepoRoot, "models", "paligemma-shapes");

    static string FindRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir != null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "PureVlm.sln"))) return dir.FullName;
        throw new DirectoryNotFoundException("PureVlm.sln not found above " + AppContext.BaseDirectory);
    }
}
