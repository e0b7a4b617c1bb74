using System.Diagnostics;
using System.Text.RegularExpressions;
using Xunit;

namespace PureVlm.Tests.Packaging;

/// <summary>Packages and installs run in their own processes; one at a time (they use the network-free local feed and a lot of CPU).</summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class PackagingCollection { public const string Name = "Packaging"; }

/// <summary>
/// The three ways README.md's "Install" section gives, run as written from folders with no source tree: the tool from
/// a local feed, the library package in a new console project, and the self-contained single file on a clean environment.
/// </summary>
[Collection(PackagingCollection.Name)]
public sealed class PackagingTests : IDisposable
{
#if DEBUG
    const string Configuration = "Debug";
#else
    const string Configuration = "Release";
#endif
    const string Version = "0.2.0"; // Directory.Build.props

    readonly string _work = Directory.CreateTempSubdirectory("purevlm-pack-").FullName;
    public void Dispose() => Directory.Delete(_work, recursive: true);

    static readonly string Readme = File.ReadAllText(Path.Combine(TestPaths.RepoRoot, "README.md")).ReplaceLineEndings("\n");
    static readonly Demo.DemoModelTests.Sample Caption = Demo.DemoModelTests.Samples.Single(s => s.Image == "04-red-circle.png" && s.Prompt == "caption en");
    static string SamplePath => Path.Combine(TestPaths.DemoModel, "samples", Caption.Image);

    /// <summary>Runs a command to completion (10 minutes at most) in <paramref name="dir"/>; returns stdout, fails with all output.</summary>
    static string Run(string dir, string file, string args, IDictionary<string, string?>? env = null, bool cleanEnvironment = false)
    {
        var start = new ProcessStartInfo(file, args) { WorkingDirectory = dir, RedirectStandardOutput = true, RedirectStandardError = true };
        if (cleanEnvironment)
        {
            start.Environment.Clear();
            start.Environment["PATH"] = "/nonexistent"; // no dotnet, no SDK: only what the executable carries
        }
        start.Environment["DOTNET_CLI_TELEMETRY_OPTOUT"] = "1";
        start.Environment["DOTNET_NOLOGO"] = "1";
        foreach (var (k, v) in env ?? new Dictionary<string, string?>()) start.Environment[k] = v;
        using var p = Process.Start(start)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        if (!p.WaitForExit(TimeSpan.FromMinutes(10))) { p.Kill(entireProcessTree: true); Assert.Fail($"{file} {args}: still running after 10 minutes"); }
        Assert.True(p.ExitCode == 0, $"{file} {args} exited {p.ExitCode}\n{stdout.Result}\n{stderr.Result}");
        return stdout.Result;
    }

    /// <summary>Packs the already built solution into a feed folder, as `dotnet pack -c Release` at the root does.</summary>
    string Pack()
    {
        string feed = Path.Combine(_work, "feed");
        Run(TestPaths.RepoRoot, "dotnet", $"pack PureVlm.sln -c {Configuration} --no-build -o \"{feed}\"");
        Assert.Equal(["PureVlm.0.2.0.nupkg", "PureVlm.Cli.0.2.0.nupkg", "PureVlm.WeightsTools.0.2.0.nupkg"],
            Directory.GetFiles(feed).Select(Path.GetFileName).Order());
        return feed;
    }

    /// <summary>An empty folder with its own package cache, so nothing comes from an earlier run or from the source tree.</summary>
    (string Dir, Dictionary<string, string?> Env) EmptyFolder(string name)
    {
        string dir = Directory.CreateDirectory(Path.Combine(_work, name)).FullName;
        return (dir, new() { ["NUGET_PACKAGES"] = Path.Combine(_work, "packages-" + name) });
    }

    [Fact]
    public void Tool_installed_from_the_feed_answers_from_an_empty_folder()
    {
        string feed = Pack();
        var (dir, env) = EmptyFolder("tool");
        string install = $"tool install --tool-path tools --add-source FEED PureVlm.Cli --version {Version}";
        Assert.Contains("dotnet " + install, Readme);
        Run(dir, "dotnet", install.Replace("FEED", $"\"{feed}\""), env);
        Assert.Equal(Caption.Expected + "\n", Run(dir, Path.Combine(dir, "tools", "purevlm"), $"run --image \"{SamplePath}\" --prompt \"caption en\"", env).ReplaceLineEndings("\n"));
        Run(dir, "dotnet", install.Replace("PureVlm.Cli", "PureVlm.WeightsTools").Replace("FEED", $"\"{feed}\""), env);
        Assert.Contains("usage: weights-tools", Run(dir, Path.Combine(dir, "tools", "weights-tools"), "--help", env));
    }

    [Fact]
    public void Package_in_a_new_console_project_runs_the_quickstart_and_prints_the_readme_output()
    {
        string feed = Pack();
        var (dir, env) = EmptyFolder("app");
        Run(dir, "dotnet", "new console -o app", env);
        string app = Path.Combine(dir, "app");
        Run(app, "dotnet", "new nugetconfig", env);
        Run(app, "dotnet", $"nuget add source \"{feed}\" -n purevlm-local --configfile nuget.config", env);
        Assert.Contains($"dotnet add package PureVlm --version {Version}", Readme);
        Run(app, "dotnet", $"add package PureVlm --version {Version}", env);
        File.Copy(Path.Combine(TestPaths.RepoRoot, "examples", "Quickstart", "Program.cs"), Path.Combine(app, "Program.cs"), overwrite: true);
        string shown = Regex.Match(Readme, "```csharp\n.*?```\n\n```\n(.*?)```", RegexOptions.Singleline).Groups[1].Value;
        Assert.Equal(shown, Run(app, "dotnet", "run", env).ReplaceLineEndings("\n"));
    }

    [Fact]
    public void Single_file_build_answers_without_dotnet_on_the_path()
    {
        // Published from a copy of the sources, so the test does not touch the build outputs of the tree it runs from.
        string src = Path.Combine(_work, "src");
        foreach (var project in new[] { "src/PureVlm.Core", "src/PureVlm.Server", "src/PureVlm.Cli" })
            CopyTree(Path.Combine(TestPaths.RepoRoot, project), Path.Combine(src, project));
        CopyTree(Path.Combine(TestPaths.RepoRoot, "models"), Path.Combine(src, "models"));
        foreach (var file in new[] { "Directory.Build.props", "README.md" })
            File.Copy(Path.Combine(TestPaths.RepoRoot, file), Path.Combine(src, file));
        const string publish = "publish src/PureVlm.Cli -c Release -r linux-x64 --self-contained -p:PublishSingleFile=true -o out";
        Assert.Contains("dotnet " + publish, Readme);
        Run(src, "dotnet", publish);
        Assert.Equal(["purevlm"], Directory.GetFiles(Path.Combine(src, "out")).Select(Path.GetFileName)); // one file

        var (dir, _) = EmptyFolder("bare");
        var env = new Dictionary<string, string?> { ["HOME"] = dir, ["DOTNET_BUNDLE_EXTRACT_BASE_DIR"] = Path.Combine(dir, "extract") };
        string answer = Run(dir, Path.Combine(src, "out", "purevlm"), $"run --image \"{SamplePath}\" --prompt \"caption en\"", env, cleanEnvironment: true);
        Assert.Equal(Caption.Expected + "\n", answer.ReplaceLineEndings("\n"));
    }

    static void CopyTree(string from, string to)
    {
        foreach (var file in Directory.EnumerateFiles(from, "*", SearchOption.AllDirectories))
        {
            string relative = Path.GetRelativePath(from, file);
            if (relative.Split(Path.DirectorySeparatorChar)[0] is "bin" or "obj") continue;
            Directory.CreateDirectory(Path.GetDirectoryName(Path.Combine(to, relative))!);
            File.Copy(file, Path.Combine(to, relative));
        }
    }
}
