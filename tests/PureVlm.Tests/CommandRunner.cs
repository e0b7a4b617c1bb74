namespace PureVlm.Tests;

/// <summary>Runs the <c>purevlm</c> or <c>weights-tools</c> command in process, capturing its exit code, stdout and stderr.</summary>
static class CommandRunner
{
    public static (int Code, string Out, string Err) Purevlm(params string[] args) => Capture(args, PureVlm.Cli.Program.Run);

    public static (int Code, string Out, string Err) WeightsTools(params string[] args) => Capture(args, PureVlm.WeightsTools.Program.Run);

    static (int Code, string Out, string Err) Capture(string[] args, Func<string[], TextWriter, TextWriter, int> run)
    {
        var o = new StringWriter();
        var e = new StringWriter();
        int code = run(args, o, e);
        return (code, o.ToString(), e.ToString());
    }
}
