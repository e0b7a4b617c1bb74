using PureVlm.Formats.Images;
using PureVlm.Inspection;

namespace PureVlm.Cli.Commands;

static class ExplainCommand
{
    const string Help = $$"""
        usage: purevlm explain [--model DIR|ID [--revision REV]] (--image FILE | --video PATH) (--prompt TEXT [--system TEXT] | --messages FILE)
                               --out DIR [--layer L] [--max-tokens N] [--lora DIR] [--seg-decoder FILE]

        Answers the prompt greedily and writes DIR/report.json and DIR/report.html: for each generated token
        its probability, the top 5 alternatives, the entropy, where it attended in the image (layer L and
        the mean over layers), the logit lens of every decoder layer, plus the answer's confidence and the
        boxes of a detect answer (and the masks of a segment answer, as COCO RLE). The HTML is self-contained
        (inline images, no network, no script).

        {{CliModel.OptionsHelp}}
        {{CliModel.QuantizeHelp}}
          --image FILE      PNG, JPEG, BMP, GIF, WebP or TIFF
          --video PATH      Video-LLaVA: a folder of frames or an animated GIF; the heatmaps become a strip
                            of the frames, each with its attention (one scale for all frames)
          --prompt TEXT     e.g. "caption en", "detect circle"
          --system TEXT     a system message before the prompt (chat models)
          --messages FILE   a JSON chat in Hugging Face's format with one image part, instead of --prompt
          --out DIR         folder for report.json and report.html (created if missing)
          --layer L         decoder layer of the main heatmap (default: the last)
          --max-tokens N    most new tokens (default 32)
          --lora DIR        apply a PEFT LoRA adapter, unmerged (repeatable)
          --seg-decoder FILE  vae-oid.npz, to turn a "segment ..." answer's <seg> codes into masks
                            (default: vae-oid.npz in the model directory, if there)
        """;

    public static int Run(string[] args)
    {
        var cl = new CommandLine("explain", args, ["--model", "--revision", "--quantize", "--image", "--video", "--prompt", "--out", "--layer", "--max-tokens", "--lora", "--seg-decoder", .. ChatInput.Options], []);
        if (cl.HelpRequested) { Console.Out.Write(Help); return 0; }
        cl.ExpectPositionals(0, "only options");
        string? imagePath = cl.Get("--image"), videoPath = cl.Get("--video");
        if ((imagePath == null) == (videoPath == null)) throw new UsageException("give exactly one of --image FILE and --video PATH (see purevlm explain --help)");
        string? prompt = cl.Get("--prompt");
        var messages = ChatInput.Messages(cl, prompt, images: imagePath != null ? 1 : 0);
        if (messages == null && prompt == null) throw new UsageException("--prompt TEXT or --messages FILE is required (see purevlm explain --help)");
        if (messages != null && videoPath != null) throw new UsageException("--messages and --system take images; with --video give --prompt");
        string outDir = cl.Require("--out");
        int maxTokens = cl.Int("--max-tokens", 1, 1 << 16) ?? 32;
        int? layer = cl.Int("--layer", 0);

        var image = imagePath != null ? ImageLoader.Load(imagePath) : null;
        using var model = CliModel.Load(cl, cl.Get("--seg-decoder"));
        var input = image != null ? MediaInput.Image(image) : model.LoadVideo(videoPath!);
        int layers = model.Loaded.Config.Text.NumHiddenLayers;
        if (layer >= layers) throw new UsageException($"--layer {layer}: the decoder has layers 0..{layers - 1}");

        var adapters = cl.GetAll("--lora").Select(dir => model.LoadAdapter(dir).Name).ToList();
        var explainOptions = new ExplainOptions { MaxNewTokens = maxTokens, Layer = layer, Adapters = adapters };
        var explanation = messages != null ? ExplainReport.Create(model, image!, messages, explainOptions) : ExplainReport.Create(model, input, prompt!, explainOptions);
        Directory.CreateDirectory(outDir);
        string json = Path.Combine(outDir, "report.json"), html = Path.Combine(outDir, "report.html");
        File.WriteAllText(json, explanation.Report.ToJson());
        File.WriteAllText(html, ReportHtml.Render(explanation));
        Console.Out.WriteLine(explanation.Report.Answer.Text);
        Console.Error.WriteLine($"wrote {json} and {html}");
        return 0;
    }
}
