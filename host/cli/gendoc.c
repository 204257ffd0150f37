/* gradfeat help --man | --bash-completion: the man page gradfeat.1 and the bash completion script,
 * generated from the same option tables that give --help (cli_opts_parse, options.c), so neither can
 * drift from it. Each subcommand is run with "--help" while cli_doc_hook is set: cli_opts_parse then
 * hands its table (with the environment twins filled in) to the hook below instead of parsing.
 * The build writes both files by running the built binary (CMakeLists.txt); tests/cli_docs.sh checks
 * that every option --help prints is in both, that groff renders the page without a warning, and
 * that the completion completes subcommands, options, choices and device names. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "cli.h"

enum { DOC_MAN = 1, DOC_BASH };
static int doc_mode, doc_calls;

/* Text for roff: '\' -> \e, '-' -> \- (a real minus: options copy and paste), a '.' or '\'' opening a
 * line -> \&., non-ASCII UTF-8 -> a \[u00E9]-style escape of its code point (groff and mandoc read it without preconv). */
static void roff(const char *s, size_t n) {
    int bol = 1;
    for (size_t i = 0; i < n && s[i]; i++) {
        unsigned char c = (unsigned char)s[i];
        if (bol && (c == '.' || c == '\'')) fputs("\\&", stdout);
        bol = c == '\n';
        if (c == '\\') fputs("\\e", stdout);
        else if (c == '-') fputs("\\-", stdout);
        else if (c < 0x80) putchar(c);
        else {
            int len = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC0 ? 2 : 1;
            unsigned cp = len == 4 ? c & 7u : len == 3 ? c & 15u : len == 2 ? c & 31u : '?';
            for (int k = 1; k < len && i + 1 < n && ((unsigned char)s[i + 1] & 0xC0) == 0x80; k++)
                cp = cp << 6 | ((unsigned char)s[++i] & 63u);
            printf("\\[u%04X]", cp);
        }
    }
}
static void roffs(const char *s) { roff(s, strlen(s)); }

/* A block of --help prose: indented lines (lists, commands) stay as they are, other lines are filled,
 * an empty line starts a new paragraph. */
static void man_prose(const char *s) {
    int nofill = 0;
    while (s && *s) {
        const char *e = strchr(s, '\n');
        size_t n = e ? (size_t)(e - s) : strlen(s);
        int blank = n == 0, indented = n > 0 && s[0] == ' ';
        if (indented && !nofill) { puts(".nf"); nofill = 1; }
        if (!indented && nofill) { puts(".fi"); nofill = 0; }
        if (blank) puts(".PP");
        else { roff(s, n); putchar('\n'); }
        s = e ? e + 1 : s + n;
    }
    if (nofill) puts(".fi");
}

static void man_lines(const char *s) {   /* usage and examples: kept line by line */
    puts(".nf");
    roffs(s);
    if (*s && s[strlen(s) - 1] != '\n') putchar('\n');
    puts(".fi");
}

static void man_command(const cli_opts *o, const cli_doc *doc) {
    printf(".SS \"gradfeat %s\"\n", o->cmd);
    man_lines(doc->usage);
    puts(".PP");
    man_prose(doc->about);
    puts(".PP\nOptions (each one's environment twin in []):");
    for (int i = 0; i < o->n; i++) {
        const cli_opt *d = &o->defs[i];
        puts(".TP");
        if (d->short_opt) printf("\\fB\\-%c\\fR, ", d->short_opt);
        fputs("\\fB\\-\\-", stdout);
        roffs(d->name);
        fputs("\\fR", stdout);
        if (d->arg) { fputs(" \\fI", stdout); roffs(d->arg); fputs("\\fR", stdout); }
        else if (d->type == CLI_FLAG) fputs("[=no]", stdout);
        putchar('\n');
        char help[1024];
        roffs(cli_opt_help(o, i, help, sizeof help));
        fputs(" [", stdout);
        roffs(o->env[i]);
        puts("]");
    }
    printf(".TP\n\\fB\\-\\-config\\fR \\fIFILE\\fR\noptions from FILE: 'key value' lines, # comments [");
    roffs(o->config_env);
    puts("]\n.TP\n\\fB\\-h\\fR, \\fB\\-\\-help\\fR\nthis text");
    if (doc->examples && *doc->examples) {
        puts(".PP\nExamples:");
        man_lines(doc->examples);
    }
}

/* "a|b|c" -> "a b c" */
static void bash_words(const char *s) {
    for (; *s; s++) putchar(*s == '|' ? ' ' : *s);
}

static int lower_word(const char *s, size_t n) {   /* a literal word ("inspect", "info|clear"), not MODEL or --x */
    if (!n || !islower((unsigned char)s[0])) return 0;
    for (size_t i = 0; i < n; i++)
        if (!islower((unsigned char)s[i]) && !isdigit((unsigned char)s[i]) && s[i] != '|' && s[i] != '-') return 0;
    return 1;
}

static void bash_command(const cli_opts *o, const cli_doc *doc) {
    printf("    %s)\n        opts=\"", o->cmd);
    for (int i = 0; i < o->n; i++) {
        if (o->defs[i].short_opt) printf("-%c ", o->defs[i].short_opt);
        printf("--%s ", o->defs[i].name);
    }
    printf("--config -h --help\"\n        vals=\"");
    for (int i = 0; i < o->n; i++) {
        if (o->defs[i].type == CLI_FLAG) continue;
        if (o->defs[i].short_opt) printf("-%c ", o->defs[i].short_opt);
        printf("--%s ", o->defs[i].name);
    }
    printf("--config\"\n        actions=\"");
    /* actions: the literal word after "gradfeat CMD" on each usage line (data inspect|bench, cache info|clear) */
    const char *u = doc->usage;
    int first = 1;
    size_t cl = strlen(o->cmd);
    while ((u = strstr(u, "gradfeat "))) {
        u += 9;
        if (strncmp(u, o->cmd, cl) || u[cl] != ' ') continue;
        const char *w = u + cl + 1;
        size_t n = strcspn(w, " \n");
        if (lower_word(w, n)) {
            if (!first) putchar(' ');
            for (size_t k = 0; k < n; k++) putchar(w[k] == '|' ? ' ' : w[k]);
            first = 0;
        }
    }
    puts("\"");
    /* values: choices, yes/no of switches, device names */
    puts("        case $prev in");
    for (int i = 0; i < o->n; i++) {
        const cli_opt *d = &o->defs[i];
        const char *choices = d->type == CLI_CHOICE ? d->choices
                            : d->type == CLI_FLAG ? "yes|no"
                            : d->arg && lower_word(d->arg, strlen(d->arg)) && strchr(d->arg, '|') ? d->arg : NULL;
        int device = !strcmp(d->name, "device");
        if (!choices && !device) continue;
        printf("            --%s", d->name);
        if (d->short_opt && d->type != CLI_FLAG) printf("|-%c", d->short_opt);
        if (device) printf(") words=\"$(_gradfeat_devices \"${COMP_WORDS[0]}\")\" ;;\n");
        else if (d->type == CLI_FLAG) puts(") [ \"$eq\" = 1 ] && words=\"yes no\" ;;");   /* only --switch=no */
        else { printf(") words=\""); bash_words(choices); puts("\" ;;"); }
    }
    puts("        esac\n        ;;");
}

static void doc_hook(const cli_opts *o, const cli_doc *doc) {
    doc_calls++;
    if (doc_mode == DOC_MAN) man_command(o, doc);
    else bash_command(o, doc);
}

static const char bash_head[] =
    "# bash completion for gradfeat: subcommands, their options, option choices and device names.\n"
    "# Generated by `gradfeat help --bash-completion` from the CLI's option tables; do not edit.\n"
    "\n"
    "# device selectors: cpu, gpu and the index and P:D columns of `gradfeat devices`\n"
    "_gradfeat_devices() {\n"
    "    local g=$1\n"
    "    command -v \"$g\" > /dev/null 2>&1 || g=gradfeat\n"
    "    echo cpu gpu\n"
    "    timeout 5 \"$g\" devices 2> /dev/null | awk 'NR > 1 && $1 ~ /^[0-9]+$/ { print $1, $2 }'\n"
    "}\n"
    "\n"
    "_gradfeat() {\n"
    "    local cur=${COMP_WORDS[COMP_CWORD]} prev=\"\" cmd opts vals actions words=\"\" i w npos=0 eq=0\n"
    "    [ \"$COMP_CWORD\" -gt 0 ] && prev=${COMP_WORDS[COMP_CWORD-1]}\n"
    "    # --opt=value: bash splits it into --opt, =, value\n"
    "    if [ \"$cur\" = \"=\" ]; then cur=\"\" eq=1\n"
    "    elif [ \"$prev\" = \"=\" ] && [ \"$COMP_CWORD\" -gt 1 ]; then prev=${COMP_WORDS[COMP_CWORD-2]} eq=1\n"
    "    fi\n"
    "    COMPREPLY=()\n"
    "    if [ \"$COMP_CWORD\" -le 1 ]; then\n";

int cli_gendoc(const char *what, const cli_command *cmds, int n, void (*usage)(FILE *)) {
    doc_mode = !strcmp(what, "--man") ? DOC_MAN : !strcmp(what, "--bash-completion") ? DOC_BASH : 0;
    if (!strcmp(what, "--help") || !strcmp(what, "-h")) { usage(stdout); return 0; }
    for (int i = 0; !doc_mode && i < n; i++)   /* gradfeat help COMMAND = gradfeat COMMAND --help */
        if (!strcmp(what, cmds[i].name)) {
            char name[64], help[] = "--help";
            snprintf(name, sizeof name, "%s", cmds[i].name);
            char *argv[] = {name, help, NULL};
            return cmds[i].fn(2, argv);
        }
    if (!doc_mode)
        return cli_usage_error("help", "'%s' is neither a command nor --man or --bash-completion", what);
    if (doc_mode == DOC_MAN) {
        char *top = NULL;
        size_t top_n = 0;
        FILE *f = open_memstream(&top, &top_n);
        if (!f) return GF_ERR_MEMORY;
        usage(f);
        fclose(f);
        const char *body = strstr(top, "\n\n");   /* the text after the "usage:" line */
        printf(".\\\" gradfeat.1: generated by `gradfeat help --man` from the CLI's option tables "
               "(host/cli); do not edit.\n"
               ".TH GRADFEAT 1 \"%s\" \"gradfeat %s\" \"User Commands\"\n.nh\n.ad l\n"
               ".SH NAME\ngradfeat \\- adapt a pre-trained CNN to a new image task with gradients as features\n"
               ".SH SYNOPSIS\n.B gradfeat\n.RB [ \\-\\-version ]\n.RB [ \\-\\-help ]\n.I command\n"
               ".RI [ options ]\n.SH DESCRIPTION\n", gf_git_date(), gf_version());
        body = body ? body + 2 : top;
        const char *rest = strstr(body, "\n\n");     /* the first paragraph filled, the rest as --help has it */
        if (rest) {
            roff(body, (size_t)(rest - body));
            puts("\n.PP");
            man_lines(rest + 2);
        } else man_prose(body);
        free(top);
        puts(".SH COMMANDS");
    } else {
        fputs(bash_head, stdout);
        printf("        COMPREPLY=($(compgen -W \"");
        for (int i = 0; i < n; i++) printf("%s ", cmds[i].name);
        puts("help --help --version\" -- \"$cur\"))\n        return 0\n    fi\n    cmd=${COMP_WORDS[1]}\n"
             "    case $cmd in");
        printf("    help)\n        opts=\"--man --bash-completion --help\"\n        vals=\"\"\n        actions=\"");
        for (int i = 0; i < n; i++) printf("%s%s", i ? " " : "", cmds[i].name);
        puts("\"\n        ;;");
    }
    cli_doc_hook = doc_hook;
    for (int i = 0; i < n; i++) {
        char name[64], help[] = "--help";
        snprintf(name, sizeof name, "%s", cmds[i].name);
        char *argv[] = {name, help, NULL};
        int before = doc_calls, rc = cmds[i].fn(2, argv);
        if (rc || doc_calls != before + 1) {   /* every subcommand must go through its option table */
            cli_doc_hook = NULL;
            fprintf(stderr, "%s help: '%s' did not describe its options (rc %d)\n", cli_prog, cmds[i].name, rc);
            return 1;
        }
    }
    cli_doc_hook = NULL;
    if (doc_mode == DOC_MAN) {
        printf(".SH ENVIRONMENT\n"
               "Every option has an environment twin, listed with it above; flags win over \\fB\\-\\-config\\fR "
               "\\fIFILE\\fR, which wins over the environment.\n"
               ".TP\n.B GRADFEAT_DEVICE\nthe OpenCL device: index, P:D, cpu, gpu or part of a name "
               "(\\fBgradfeat devices\\fR lists them)\n"
               ".TP\n.B GRADFEAT_CACHE_DIR\nthe compiled-kernel cache and the CLBlast tuning files of "
               "\\fBgradfeat tune\\fR (default $XDG_CACHE_HOME/gradfeat, else ~/.cache/gradfeat)\n"
               ".TP\n.B GRADFEAT_TUNING\n0: ignore the device's CLBlast tuning file (\\fBgradfeat tune\\fR); "
               "it is applied when GEMMs run in CLBlast\n"
               ".TP\n.B GRADFEAT_GEMM\nhost or clblast: the GEMM path (CPU devices sharing host memory use the "
               "host BLAS); \\fBGRADFEAT_PATHS\\fR=gpu forces every GPU-style path\n"
               ".TP\n.B GRADFEAT_PATHS\nauto, cpu or gpu: every device-type branch at once (conv kernels, "
               "batch-norm walk, GEMM); \\fBGRADFEAT_CONV_KERNELS\\fR, \\fBGRADFEAT_BN_WALK\\fR and "
               "\\fBGRADFEAT_GEMM\\fR choose one each\n"
               ".TP\n.B GRADFEAT_HOST_MEM\nauto, map or copy: the caches in mapped host memory (auto: on devices "
               "that share memory with the host) or copied to the device\n"
               ".TP\n.B GRADFEAT_CONV_ALGO\nauto, direct, winograd or winograd4: 3x3 stride-1 convolutions by im2col + "
               "GEMM or by Winograd F(2x2, 3x3) or F(4x4, 3x3) (auto: F(4x4, 3x3) for large convs, "
               "from fewer channels for frozen weights than for moving ones, else direct)\n"
               ".SH SEE ALSO\n.BR clinfo (1)\n"
               ".PP\nThe README of the gradfeat sources: the method, the defaults and how they were chosen.\n");
    } else {
        puts("    *) return 0 ;;\n    esac\n"
             "    if [ -n \"$words\" ] || [[ \" $vals \" == *\" $prev \"* ]]; then\n"
             "        # the value of an option: its choices, else file names (complete -o default)\n"
             "        [ -n \"$words\" ] && COMPREPLY=($(compgen -W \"$words\" -- \"$cur\"))\n"
             "        return 0\n    fi\n"
             "    if [[ $cur == -* ]]; then\n        COMPREPLY=($(compgen -W \"$opts\" -- \"$cur\"))\n        return 0\n"
             "    fi\n"
             "    # the first positional argument of data, cache and bench is an action\n"
             "    for ((i = 2; i < COMP_CWORD; i++)); do\n"
             "        w=${COMP_WORDS[i]}\n"
             "        if [[ \" $vals \" == *\" $w \"* || $w == = ]]; then i=$((i + 1))   # skip the value\n"
             "        elif [[ $w != -* ]]; then npos=$((npos + 1))\n"
             "        fi\n"
             "    done\n"
             "    [ \"$npos\" -eq 0 ] && [ -n \"$actions\" ] && COMPREPLY=($(compgen -W \"$actions\" -- \"$cur\"))\n"
             "    return 0\n}\n"
             "complete -o default -F _gradfeat gradfeat");
    }
    return fflush(stdout) ? GF_ERR_IO : 0;
}
