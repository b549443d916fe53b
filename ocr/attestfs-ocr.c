/*
 * `attestfs-ocr FILE.png`: the text on a screenshot, on stdout. The daemon
 * runs it as a child for screen.txt: libtesseract and its English model take
 * tens of MiB (linking them alone would triple the daemon's resident size),
 * and a cancelled read just kills the child.
 */
#include <stdio.h>

#include <leptonica/allheaders.h>
#include <tesseract/capi.h>

int
main(int argc, char *argv[])
{
	const char *png_path = argc == 2 ? argv[1] : NULL;
	TessBaseAPI *api;
	PIX *pix, *big;
	char *text;
	int ret = 0;

	if (!png_path) {
		fprintf(stderr, "usage: attestfs-ocr FILE.png\n");
		return 2;
	}
	pix = pixRead(png_path);
	if (!pix) {
		fprintf(stderr, "attestfs-ocr: cannot read %s\n", png_path);
		return 2;
	}
	/* The 9x16 VGA font reads much better doubled (nearest neighbour). */
	big = pixExpandReplicate(pix, 2);
	api = TessBaseAPICreate();
	if (TessBaseAPIInit3(api, NULL, "eng") != 0) {
		fprintf(stderr, "attestfs-ocr: tesseract has no 'eng' model "
				"(Debian: tesseract-ocr-eng)\n");
		ret = 2;
		goto out;
	}
	TessBaseAPISetImage2(api, big ? big : pix);
	text = TessBaseAPIGetUTF8Text(api);
	if (!text) {
		fprintf(stderr, "attestfs-ocr: recognition failed\n");
		ret = 2;
	} else {
		fputs(text, stdout);
		TessDeleteText(text);
	}
	TessBaseAPIEnd(api);
out:
	TessBaseAPIDelete(api);
	pixDestroy(&big);
	pixDestroy(&pix);
	return fflush(stdout) == 0 ? ret : 2;
}
