using BenchmarkDotNet.Running;

namespace PureVlm.Benchmarks;

static class Program
{
    static void Main(string[] args)
    {
        if (args.Length > 0 && args[0] == "fuzz") Environment.Exit(FuzzCommand.Run(args));
        if (args.Contains("--quick")) Quick.Run();
        else BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args);
    }
}
