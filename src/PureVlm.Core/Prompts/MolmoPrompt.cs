using PureVlm.Formats.Images;
using PureVlm.Outputs;
using PureVlm.Tokenization;

namespace PureVlm.Prompts;

/// <summary>
/// Molmo's input sequence, as <c>MolmoProcessor</c> (and allenai/molmo's <c>DataFormatter</c>) builds it:
/// <c>&lt;|endoftext|&gt;</c> in place of a BOS, each image's token blocks (its global view, then its tile grid, each
/// <c>&lt;im_start&gt;</c>, rows of <c>&lt;im_patch&gt;</c> ended by <c>&lt;im_col&gt;</c>, <c>&lt;im_end&gt;</c>), then
/// <c>" User: {prompt} Assistant:"</c> — leading space included; the ChatML template of tokenizer_config.json is not
/// what the model was trained with. Answers may hold <c>&lt;point&gt;</c> / <c>&lt;points&gt;</c> (<see cref="PointTags"/>).
/// </summary>
/// <param name="imagePatchId">The <c>&lt;im_patch&gt;</c> id (config.json's image token).</param>
/// <param name="cellsPerCropSide">Pooled cells per crop side, for <see cref="SyntheticIds(int, int, int)"/>.</param>
public sealed class MolmoPrompt(int imagePatchId, int cellsPerCropSide) : IPromptFormat
{
    /// <summary>The tokens of the image blocks and the BOS stand-in, as in Molmo's tokenizer.</summary>
    public const string ImStart = "<im_start>", ImEnd = "<im_end>", ImPatch = "<im_patch>", ImCol = "<im_col>", EndOfText = "<|endoftext|>";

    /// <inheritdoc/>
    public string ImageToken => ImPatch;

    /// <summary>The message text around the user's prompt.</summary>
    public static string Message(string prompt) => " User: " + prompt + " Assistant:";

    /// <inheritdoc/>
    /// <remarks>Molmo's image tokens depend on each image's size, so only a text-only prompt (0 images) can be built from a count.</remarks>
    public int[] Build(SentencePieceTokenizer tokenizer, string prompt, int images) => images == 0
        ? Build(tokenizer, prompt, [])
        : throw new ArgumentException("Molmo's image tokens depend on each image's size and tiling: build the prompt from the images' crops (MolmoPrompt.Build with MultiCropImage, or VlmModel.PromptIds(prompt, images))", nameof(images));

    /// <summary>The ids of <paramref name="prompt"/> after the blocks of <paramref name="images"/> (as <see cref="MolmoImageProcessor.Process"/> cut them).</summary>
    public int[] Build(SentencePieceTokenizer tokenizer, string prompt, IReadOnlyList<MultiCropImage> images)
    {
        ArgumentNullException.ThrowIfNull(tokenizer);
        ArgumentNullException.ThrowIfNull(prompt);
        int Id(string token) => tokenizer.TryGetId(token, out int id) ? id
            : throw new InvalidOperationException($"the tokenizer has no {token} token, which a Molmo prompt needs");
        if (Id(ImPatch) != imagePatchId)
            throw new InvalidOperationException($"the tokenizer's {ImPatch} is {Id(ImPatch)}, the model adds image features to id {imagePatchId}");
        var ids = new List<int> { Id(EndOfText) };
        foreach (var image in images)
            foreach (var (rows, cols) in image.TokenGrids) AddBlock(ids, imagePatchId, rows, cols, Id(ImStart), Id(ImCol), Id(ImEnd));
        ids.AddRange(tokenizer.Encode(Message(prompt)));
        return ids.ToArray();
    }

    static void AddBlock(List<int> ids, int imagePatchId, int rows, int cols, int start, int col, int end)
    {
        ids.Add(start);
        for (int r = 0; r < rows; r++)
        {
            ids.AddRange(Enumerable.Repeat(imagePatchId, cols));
            ids.Add(col);
        }
        ids.Add(end);
    }

    /// <inheritdoc/>
    /// <remarks>
    /// <c>[bos, blocks…, text…]</c> with each image laid out as a small square image is (a 1 × 1 tiling: the global
    /// view's block and one tile's, both cells-per-side square); the text ids stand for the message.
    /// </remarks>
    public int[] SyntheticIds(int images, int textTokens, int bos)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(images);
        var square = new (int, int)[] { (cellsPerCropSide, cellsPerCropSide), (cellsPerCropSide, cellsPerCropSide) };
        return SyntheticIds(Enumerable.Repeat<IReadOnlyList<(int Rows, int Cols)>>(square, images).ToList(), textTokens, bos, imagePatchId);
    }

    /// <summary>Ids laid out for these images' crops without a tokenizer, as <see cref="SyntheticIds(int, int, int)"/> (for bench).</summary>
    public static int[] SyntheticIds(IReadOnlyList<MultiCropImage> images, int textTokens, int bos, int imagePatchId) =>
        SyntheticIds(images.Select(i => i.TokenGrids).ToList(), textTokens, bos, imagePatchId);

    /// <remarks>
    /// The block delimiters are <c>&lt;im_patch&gt;</c>'s neighbours in Molmo's token table: <c>&lt;im_start&gt;</c> = patch − 2,
    /// <c>&lt;im_end&gt;</c> = patch − 1, <c>&lt;im_col&gt;</c> = patch + 1.
    /// </remarks>
    static int[] SyntheticIds(IReadOnlyList<IReadOnlyList<(int Rows, int Cols)>> images, int textTokens, int bos, int imagePatchId)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(textTokens);
        var ids = new List<int> { bos };
        foreach (var grids in images)
            foreach (var (rows, cols) in grids) AddBlock(ids, imagePatchId, rows, cols, imagePatchId - 2, imagePatchId + 1, imagePatchId - 1);
        ids.AddRange(Enumerable.Range(0, textTokens).Select(IPromptFormat.FillerId));
        return ids.ToArray();
    }

    /// <inheritdoc/>
    public IReadOnlyList<PointAnswer> ParsePoints(string answer, int width, int height) => PointTags.Parse(answer, width, height);
}
