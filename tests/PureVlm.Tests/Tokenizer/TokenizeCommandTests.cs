using PureVlm.Cli.Commands;
using Xunit;
using static PureVlm.Tests.Tokenizer.TokenizerFixtureData;

namespace PureVlm.Tests.Tokenizer;

/// <summary>The <c>purevlm tokenize</c> command on JSON lines.</summary>
public class TokenizeCommandTests
{
    static (int Code, string Out, string Err) Run(string stdin, params string[] args)
    {
        var output = new StringWriter();
        var error = new StringWriter();
        int code = TokenizeCommand.Run(args, new StringReader(stdin), output, error);
        return (code, output.ToString().ReplaceLineEndings("\n"), error.ToString());
    }

    [Fact]
    public void Tokenize_encodes_json_lines_to_ids_and_pieces_without_bos()
    {
        var (code, output, err) = Run("{\"text\": \"caption en\\n\"}\n{\"text\": \"\"}\n", "--tokenizer", Path.Combine(TestPaths.DemoModel, "tokenizer.model"));
        Assert.Equal("", err);
        Assert.Equal(0, code);
        Assert.Equal("{\"ids\":[1470,1417,5],\"pieces\":[\"caption\",\"▁en\",\"\\n\"]}\n{\"ids\":[],\"pieces\":[]}\n", output);
    }

    [Fact]
    public void Tokenize_add_bos_puts_bos_id_first()
    {
        var (code, output, _) = Run("{\"text\": \"<bos>\"}\n", "--tokenizer", TokenizerFile("gemma"), "--add-bos");
        Assert.Equal(0, code);
        Assert.Equal("{\"ids\":[2,2],\"pieces\":[\"<bos>\",\"<bos>\"]}\n", output);
    }

    [Fact]
    public void Tokenize_decode_writes_text()
    {
        var (code, output, _) = Run("{\"ids\": [1470, 1417, 5]}\n", "--tokenizer", Path.Combine(TestPaths.DemoModel, "tokenizer.model"), "--decode");
        Assert.Equal(0, code);
        Assert.Equal("{\"text\":\"caption en\\n\"}\n", output);
    }

    [Theory]
    [InlineData("{\"text\": \"ok\"}\nnot json\n", "line 2:")]
    [InlineData("{\"text\": \"ok\"}\n{\"ids\": [1]}\n", "line 2: expected a JSON object with \"text\"")]
    public void Tokenize_bad_line_exits_1_naming_the_line(string stdin, string message)
    {
        var (code, _, err) = Run(stdin, "--tokenizer", TokenizerFile("spm-tiny"));
        Assert.Equal(1, code);
        Assert.Contains(message, err);
        Assert.Single(err.TrimEnd().Split('\n'));
    }

    [Fact]
    public void Tokenize_decode_of_negative_id_exits_1_naming_the_line()
    {
        var (code, _, err) = Run("{\"ids\": [-1]}\n", "--tokenizer", TokenizerFile("spm-tiny"), "--decode");
        Assert.Equal(1, code);
        Assert.StartsWith("purevlm tokenize: line 1: ", err);
    }

    [Theory]
    [InlineData("")]
    [InlineData("--tokenizer")]
    [InlineData("--bogus")]
    [InlineData("--tokenizer x.model --decode --add-bos")]
    public void Tokenize_usage_errors_exit_2(string args) =>
        Assert.Equal(2, Run("", args.Split(' ', StringSplitOptions.RemoveEmptyEntries)).Code);

    [Fact]
    public void Tokenize_help_exits_0()
    {
        var (code, output, _) = Run("", "--help");
        Assert.Equal(0, code);
        Assert.Contains("--add-bos", output);
    }

    [Fact]
    public void Tokenize_bad_tokenizer_file_exits_1() =>
        Assert.Equal(1, Run("", "--tokenizer", Path.Combine(TestPaths.Data, "no-such-tokenizer.model")).Code);
}
