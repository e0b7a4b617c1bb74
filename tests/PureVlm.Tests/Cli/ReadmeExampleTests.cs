using System.Text.RegularExpressions;
using Xunit;

namespace PureVlm.Tests.Cli;

[Collection(ConsoleCollection.Name)]
public class ReadmeExampleTests
{
    [Fact]
    public void Readme_csharp_example_is_the_quickstart_program()
    {
        string readme = File.ReadAllText(Path.Combine(TestPaths.RepoRoot, "README.md")).ReplaceLineEndings("\n");
        string block = Regex.Match(readme, "```csharp\n(.*?)```", RegexOptions.Singleline).Groups[1].Value;
        string program = File.ReadAllText(Path.Combine(TestPaths.RepoRoot, "examples", "Quickstart", "Program.cs")).ReplaceLineEndings("\n");
        Assert.Equal(program, block);
    }

    [Fact]
    public async Task Quickstart_program_prints_the_readme_output()
    {
        var entry = System.Reflection.Assembly.Load("Quickstart").EntryPoint!;
        var output = new StringWriter();
        var old = Console.Out;
        Console.SetOut(output);
        try
        {
            var result = entry.Invoke(null, [Array.Empty<string>()]);
            if (result is Task task) await task;
        }
        finally { Console.SetOut(old); }
        string readme = File.ReadAllText(Path.Combine(TestPaths.RepoRoot, "README.md")).ReplaceLineEndings("\n");
        string shown = Regex.Match(readme, "```csharp\n.*?```\n\n```\n(.*?)```", RegexOptions.Singleline).Groups[1].Value;
        Assert.Equal(shown, output.ToString().ReplaceLineEndings("\n"));
        // The answers shown are the reference's (samples/expected.jsonl), not our own output copied.
        var lines = shown.Split('\n');
        var expected = Demo.DemoModelTests.Samples.Where(s => s.Image == "04-red-circle.png").ToDictionary(s => s.Prompt, s => s.Expected);
        Assert.Equal(expected["caption en"], lines[0]);
        Assert.StartsWith(expected["detect circle"] + " (", lines[1]);
    }
}
