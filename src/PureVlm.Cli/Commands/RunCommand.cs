using System.Globalization;
using System.Text.Json;
using PureVlm.Formats.Images;
using PureVlm.Runtime;

namespace PureVlm.Cli.Commands;

static class RunCommand
{
    const string Help = """
        usage: purevlm run [--model DIR] --image FILE [--image FILE ...] --prompt TEXT [options]

        Asks a vision-language model (PaliGemma, LLaVA, Molmo) about an image. The answer streams to stdout;
        loading progress and timings go to stderr. Without --model, the embedded demo model
        (paligemma-shapes) is used.

          --model DIR          Hugging Face model directory (config.json, safetensors, tokenizer)
          --image FILE         PNG, JPEG, BMP or GIF; repeat it for several images, in the order of the
                               prompt's <image> markers (LLaVA)
          --prompt TEXT        PaliGemma: e.g. "caption en", "detect circle", "answer en what color is the circle?";
                               LLaVA: the user's words, put into "USER: <image>\n{prompt} ASSISTANT:";
                               Molmo: the user's words, e.g. "Point to the cups." (answers with points)
          --max-tokens N       most new tokens (default 64, at least 1)
          --temperature T      0 = greedy (default); > 0 samples
          --top-k K            sample among the K most likely tokens (0 = all)
          --top-p P            sample among the most likely tokens up to probability P (default 1)
          --seed S             sampler seed (default 0): the same seed gives the same answer
          --json               print one JSON object (text, tokens, detections, segments, points, timings) instead
          --annotate OUT.png   write the image with the detected boxes and points drawn
          --lora DIR           apply a PEFT LoRA adapter, unmerged (repeatable: all given are active)
        """;

    public static int Run(string[] args)
    {
        var cl = new CommandLine("run", args,
            ["--model", "--image", "--prompt", "--max-tokens", "--temperature", "--top-k", "--top-p", "--seed", "--annotate", "--lora"], ["--json"]);
        if (cl.HelpRequested) { Console.Out.Write(Help); return 0; }
        cl.ExpectPositionals(0, "only options");
        var imagePaths = cl.GetAll("--image");
        if (imagePaths.Count == 0) cl.Require("--image");
        string prompt = cl.Require("--prompt");
        var options = new GenerationOptions
        {
            MaxNewTokens = cl.Int("--max-tokens", 1, 1 << 20) ?? 64,
            Temperature = cl.Float("--temperature", 0, 1e6f) ?? 0,
            TopK = cl.Int("--top-k", 0) ?? 0,
            TopP = cl.Float("--top-p", float.Epsilon, 1) ?? 1,
            Seed = (ulong)(cl.Int("--seed", 0) ?? 0),
        };
        string? annotate = cl.Get("--annotate");
        bool json = cl.Flag("--json");

        var images = imagePaths.Select(ImageLoader.Load).ToList();
        if (annotate != null && imagePaths.Any(path => Path.GetFullPath(annotate) == Path.GetFullPath(path)))
            throw new UsageException($"--annotate {annotate} would overwrite an input image; choose another file");
        using var model = CliModel.Load(cl.Get("--model"));
        options = options with { Adapters = cl.GetAll("--lora").Select(dir => model.LoadAdapter(dir).Name).ToList() };

        Action<string>? stream = json ? null : piece => { Console.Out.Write(piece); Console.Out.Flush(); };
        var result = model.Generate(images, prompt, options, stream);
        if (!json) Console.Out.WriteLine();
        var t = result.Timings;
        Console.Error.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"load {model.LoadSeconds:0.000} s, image encode {t.ImageEncodeSeconds:0.000} s, prefill {t.PrefillTokens} tokens {t.PrefillSeconds:0.000} s, decode {t.DecodedTokens} tokens {t.DecodeTokensPerSecond:0.0} tok/s"));
        if (json) Console.Out.WriteLine(ToJson(result, model.LoadSeconds));
        if (annotate != null)
        {
            var boxes = result.Detections.Select(d => LabelledBox.FromPixels(d.Box, d.Label)).ToList();
            // A point is drawn as a small box centred on it, so it shows with its label as the boxes do.
            boxes.AddRange(result.Points.Select(p => LabelledBox.FromPixels([(float)p.X - PointMark, (float)p.Y - PointMark, (float)p.X + PointMark, (float)p.Y + PointMark], p.Label)));
            PngWriter.Save(ImageAnnotator.Draw(images[0], boxes), annotate);
            Console.Error.WriteLine($"wrote {annotate} with {result.Detections.Count} box(es) and {result.Points.Count} point(s)");
        }
        return 0;
    }

    /// <summary>Half the side of the box marking a point in --annotate, in pixels.</summary>
    const float PointMark = 3;

    static string ToJson(GenerationResult r, double loadSeconds)
    {
        var doc = new
        {
            text = r.Text,
            tokens = r.Tokens.Select(t => new { id = t.Id, text = t.Text, probability = t.Probability }),
            detections = r.Detections.Select(d => new { label = d.Label, box = d.Box }),
            segments = r.Segments.Select(s => new { label = s.Label, box = s.Box, codes = s.Codes }),
            points = r.Points.Select(p => new { label = p.Label, x = p.X, y = p.Y, x_percent = p.XPercent, y_percent = p.YPercent }),
            timings = new
            {
                load_s = loadSeconds,
                image_encode_s = r.Timings.ImageEncodeSeconds,
                prefill_s = r.Timings.PrefillSeconds,
                prefill_tokens = r.Timings.PrefillTokens,
                decode_s = r.Timings.DecodeSeconds,
                decode_tokens = r.Timings.DecodedTokens,
                decode_tok_s = r.Timings.DecodeTokensPerSecond,
            },
        };
        return JsonSerializer.Serialize(doc, CliJson.Options);
    }
}
