using System.Net;
using PureVlm.Runtime;
using PureVlm.Server;

namespace PureVlm.Cli.Commands;

static class ServeCommand
{
    const string Help = $$"""
        usage: purevlm serve [--model DIR|ID [--revision REV]] [--host 127.0.0.1] [--port 8080] [--lora NAME=DIR ...] [--seg-decoder FILE] [options]

        Serves a model over HTTP until Ctrl+C: an OpenAI-compatible POST /v1/chat/completions (images as
        data: URIs; streaming, logprobs, usage), GET /v1/models, GET /health, the native POST /api/generate
        (the `run --json` object) and POST /api/explain (the explain report with heatmaps), and a web page
        at / to try it in a browser. Concurrent requests decode together in one batch. Prints the URL when
        ready and one line per request on stderr. Without --model, the embedded demo model is served.

        {{CliModel.OptionsHelp}}
        {{CliModel.QuantizeHelp}}
          --host ADDR        IP address to listen on (default 127.0.0.1; 0.0.0.0 exposes it to the network)
          --port N           TCP port (default 8080; 0 picks a free one)
          --lora NAME=DIR    load a PEFT LoRA adapter; requests select it with "model": "MODEL+NAME" (repeatable)
          --seg-decoder FILE vae-oid.npz, so that "segment ..." answers carry masks (default: vae-oid.npz in the
                             model directory, if there)
          --max-batch N      most requests decoding together, 1 to 16 (default 8)
          --max-queue N      most requests waiting beyond the batch (default 32); more get 503 + Retry-After
          --max-body MB      largest request body in MB (default 20); larger ones get 413
          --api-key KEY      require "Authorization: Bearer KEY" on every endpoint but /health and the page
        """;

    public static int Run(string[] args)
    {
        var cl = new CommandLine("serve", args, ["--model", "--revision", "--quantize", "--host", "--port", "--lora", "--seg-decoder", "--max-batch", "--max-queue", "--max-body", "--api-key"], []);
        if (cl.HelpRequested) { Console.Out.Write(Help); return 0; }
        cl.ExpectPositionals(0, "only options");
        string hostText = cl.Get("--host") ?? "127.0.0.1";
        var host = hostText == "localhost" ? IPAddress.Loopback
            : IPAddress.TryParse(hostText, out var ip) ? ip : throw new UsageException($"--host must be an IP address (e.g. 127.0.0.1 or 0.0.0.0), got '{hostText}'");
        var options = new ServerOptions
        {
            Host = host,
            Port = cl.Int("--port", 0, 65535) ?? 8080,
            MaxBatch = cl.Int("--max-batch", 1, BatchDecoder.MaxBatch) ?? 8,
            MaxQueue = cl.Int("--max-queue", 0, 1 << 16) ?? 32,
            MaxBodyBytes = (cl.Int("--max-body", 1, 4096) ?? 20) * 1024L * 1024,
            ApiKey = cl.Get("--api-key") is { Length: > 0 } key ? key : null,
            Log = line => Console.Error.WriteLine(line),
        };
        var loras = cl.GetAll("--lora").Select(spec =>
        {
            int eq = spec.IndexOf('=');
            if (eq <= 0 || eq == spec.Length - 1 || spec[..eq].Contains('+')) throw new UsageException($"--lora takes NAME=DIR (a name without '+'), got '{spec}'");
            return (Name: spec[..eq], Dir: spec[(eq + 1)..]);
        }).ToList();

        using var model = CliModel.Load(cl, cl.Get("--seg-decoder"));
        foreach (var (name, dir) in loras) model.LoadAdapter(dir, name);
        Serve(model, options).GetAwaiter().GetResult();
        return 0;
    }

    static async Task Serve(VlmModel model, ServerOptions options)
    {
        await using var server = await VlmServer.StartAsync(model, options);
        await server.WaitForShutdownAsync(); // Ctrl+C or SIGTERM
        Console.Error.WriteLine("stopping: requests still running are cancelled");
    }
}
