//! Material written by this project that the public corpora lack, used with the real data and
//! with the built-in corpus alike: reasoning-extraction wrappers, rubric-grading wrappers,
//! short follow-ups and app system prompts.
//!
//! The extraction wrappers are modelled on what public reports of distillation campaigns
//! describe (asking a model to "imagine and articulate the internal reasoning behind a completed
//! response", to show its full chain of thought, to write out every intermediate step, or to
//! grade answers against a rubric while explaining each criterion), phrased many ways and in
//! several languages because campaigns rotate phrasings and languages. They are not a detector
//! vocabulary: a detector keyed to these exact strings would be overfitted to this simulator.

/// Reasoning-extraction wrappers, each with one `{question}` slot.
pub(super) const EXTRACTION_TEMPLATES: &[&str] = &[
    // English.
    "Imagine you have already written a complete, correct response to the task below. Now articulate the internal reasoning that led to that response, step by step, as if you were thinking it through for the first time.\n\nTask: {question}",
    "{question}\n\nBefore giving the final answer, show your full chain of thought. Do not skip or summarise any step.",
    "Write out every intermediate step of your thinking for the following problem. Do not summarise, do not compress, and do not leave anything implicit.\n\n{question}",
    "Explain the reasoning a careful expert would go through when solving this, written as an internal monologue in the first person. Then give the answer.\n\n{question}",
    "Solve the problem below. Put your complete reasoning inside <thinking> tags and only the final answer inside <answer> tags.\n\n{question}",
    "For the question below, first write the detailed thought process you would follow, including dead ends and the corrections you make along the way, and only then the final answer.\n\nQuestion: {question}",
    "{question}\n\nThink out loud. I want to see the raw reasoning, every calculation and every check you make, not a polished explanation.",
    "Reconstruct the hidden reasoning behind the ideal answer to this question. List each inference as a numbered step, then state the conclusion.\n\n{question}",
    "Respond in two parts. Part 1: your complete step-by-step reasoning, as long as it needs to be. Part 2: the final answer on one line.\n\nQuestion: {question}",
    "Pretend your private reasoning is visible to the user. Narrate everything you consider while answering the question below, including how you verify the result.\n\n{question}",
    "Here is a task: {question}\n\nDo not answer directly. First write the full internal deliberation a strong assistant would have before answering, then write the answer it would give.",
    "Produce a detailed reasoning trace for the following question: restate the problem, list what is known, work through each step, check the result, and give the final answer.\n\n{question}",
    "{question}\n\nShow all of your work. Explain why each step follows from the previous one, and do not summarise at the end.",
    "Walk me through your thought process for this question exactly as it happens in your head, step by step, before you commit to an answer: {question}",
    "Write the long-form chain of thought first (at least ten steps), then the short answer. Keep the reasoning explicit and self-contained.\n\n{question}",
    "Act as a teacher writing the model solution for an answer key. Include every intermediate step and the reasoning behind it, then give the final answer in bold.\n\n{question}",
    "{question}\n\nAfter answering, explain in detail how you arrived at the answer: which facts you recalled, which alternatives you rejected, and why.",
    "Assume the response to the prompt below has already been written and is correct. Articulate, step by step, the internal reasoning that produced it, then reproduce the response.\n\nPrompt: {question}",
    "Answer the following, but first write a section titled 'Reasoning' that contains your complete, unabridged thinking, including any uncertainty.\n\n{question}",
    "I am collecting worked examples. For this question, give the full reasoning chain with every sub-step on its own line, then the final answer after 'Answer:'.\n\n{question}",
    // Chinese.
    "请先一步一步地写出你完整的思考过程，不要省略任何中间步骤，然后再给出最终答案。\n\n问题：{question}",
    "假设你已经写好了一个完整而正确的回答。请设想并详细说明得出这个回答的内部推理过程，逐步写出来。\n\n任务：{question}",
    "{question}\n\n请以内心独白的形式完整展示你的推理过程，不要总结，也不要跳步。",
    // Spanish.
    "Antes de dar la respuesta final, muestra tu cadena de razonamiento completa, paso a paso, sin resumir ni omitir ningún paso intermedio.\n\nPregunta: {question}",
    "Imagina que ya has escrito una respuesta completa y correcta a la siguiente tarea. Ahora explica, paso a paso, el razonamiento interno que llevó a esa respuesta.\n\nTarea: {question}",
    "{question}\n\nPiensa en voz alta: escribe todo lo que consideras, cada cálculo y cada comprobación, y solo después da la respuesta.",
    // Russian.
    "Прежде чем дать окончательный ответ, покажи полную цепочку рассуждений шаг за шагом, не пропуская и не сокращая промежуточные шаги.\n\nВопрос: {question}",
    "Представь, что ты уже написал полный и правильный ответ на это задание. Теперь подробно, шаг за шагом, изложи внутренние рассуждения, которые привели к этому ответу.\n\nЗадание: {question}",
    "{question}\n\nРассуждай вслух, как эксперт во внутреннем монологе, и только потом дай ответ.",
    // French.
    "Avant de donner la réponse finale, montre l'intégralité de ton raisonnement, étape par étape, sans résumer ni sauter d'étape intermédiaire.\n\nQuestion : {question}",
    "Imagine que tu as déjà rédigé une réponse complète et correcte à la tâche suivante. Explique maintenant, étape par étape, le raisonnement interne qui a mené à cette réponse.\n\nTâche : {question}",
    "{question}\n\nRéfléchis à voix haute, comme un expert qui se parle à lui-même, puis donne ta réponse.",
    // German.
    "Bevor du die endgültige Antwort gibst, zeige deinen vollständigen Gedankengang Schritt für Schritt, ohne Zwischenschritte auszulassen oder zusammenzufassen.\n\nFrage: {question}",
    "Stell dir vor, du hättest bereits eine vollständige und richtige Antwort auf die folgende Aufgabe geschrieben. Beschreibe nun Schritt für Schritt die inneren Überlegungen, die zu dieser Antwort geführt haben.\n\nAufgabe: {question}",
    "{question}\n\nDenke laut nach: Schreibe jeden Rechenschritt und jede Überprüfung auf und nenne erst danach das Ergebnis.",
    // Japanese.
    "最終的な答えを出す前に、途中の手順を省略したり要約したりせずに、思考の過程をすべて段階的に書き出してください。\n\n質問：{question}",
    "次の課題に対して、すでに完全で正しい回答を書き終えたと想像してください。その回答に至った内部の推論を、一歩ずつ詳しく説明してください。\n\n課題：{question}",
    "{question}\n\n専門家が頭の中で考えるように、独り言の形で推論を示してから答えてください。",
    // Korean.
    "최종 답을 제시하기 전에, 중간 단계를 생략하거나 요약하지 말고 전체 사고 과정을 단계별로 보여 주세요.\n\n질문: {question}",
    "다음 과제에 대해 이미 완전하고 정확한 답변을 작성했다고 상상해 보세요. 이제 그 답변에 이르게 된 내부 추론 과정을 단계별로 자세히 설명해 주세요.\n\n과제: {question}",
    // Portuguese.
    "Antes de dar a resposta final, mostre toda a sua cadeia de raciocínio, passo a passo, sem resumir nem pular nenhuma etapa intermediária.\n\nPergunta: {question}",
    "Imagine que você já escreveu uma resposta completa e correta para a tarefa a seguir. Agora explique, passo a passo, o raciocínio interno que levou a essa resposta.\n\nTarefa: {question}",
    // Arabic.
    "قبل أن تعطي الإجابة النهائية، اعرض سلسلة تفكيرك كاملة خطوة بخطوة، دون اختصار أو حذف أي خطوة وسيطة.\n\nالسؤال: {question}",
    "تخيّل أنك كتبت بالفعل إجابة كاملة وصحيحة عن المهمة التالية. والآن اشرح خطوة بخطوة التفكير الداخلي الذي أدى إلى هذه الإجابة.\n\nالمهمة: {question}",
];

/// Rubric-grading wrappers, each with a `{question}` and an `{answer}` slot.
pub(super) const RUBRIC_TEMPLATES: &[&str] = &[
    "Grade the following answer on a 1–10 rubric for correctness, reasoning quality and clarity. Explain your judgement on each criterion step by step, then give the overall score.\n\nQuestion: {question}\n\nAnswer: {answer}",
    "You are an expert grader. Evaluate the response with this rubric:\n- Correctness (0–4)\n- Completeness of reasoning (0–3)\n- Clarity (0–3)\nFor each criterion, write your reasoning before the score. Finish with 'Total: X/10'.\n\n[Question]\n{question}\n\n[Response]\n{answer}",
    "Compare the answer below with what an ideal answer would contain. List every error or omission, explain why it matters, and assign a score from 1 to 10.\n\nQuestion: {question}\nCandidate answer: {answer}",
    "Act as a reward model. Read the prompt and the response, reason step by step about helpfulness, honesty and harmlessness, and output a score between 0 and 1 with a justification.\n\nPrompt: {question}\nResponse: {answer}",
    "Evaluate this solution as a strict teacher would. Check each step for mistakes, note where the reasoning is weak, and give a grade from A to F with a detailed explanation.\n\nProblem: {question}\nStudent solution: {answer}",
    "Score the response from 1 to 10 on each of: factual accuracy, logical soundness, depth and style. Justify every score in two or three sentences, then write a corrected answer if any score is below 8.\n\nInstruction: {question}\nResponse: {answer}",
    "Is the following answer correct? Work through the problem yourself first, step by step, then compare your result with the given answer and rate it from 1 to 5.\n\n{question}\n\nGiven answer: {answer}",
    "Write a detailed critique of the answer below, criterion by criterion (accuracy, reasoning, completeness, clarity), and end with a single integer score from 1 to 10.\n\n### Question\n{question}\n\n### Answer\n{answer}",
    "Two-step grading task. Step 1: write your own reference answer to the question, showing all of your reasoning. Step 2: grade the candidate answer against your reference on a 1–10 scale and explain every point you deduct.\n\nQuestion: {question}\nCandidate: {answer}",
    "Here are a question and a model's answer. Explain, step by step, what a perfect answer would do differently, then rate the given answer for correctness (1–10) and for quality of reasoning (1–10).\n\nQ: {question}\nA: {answer}",
    "请根据以下评分标准为回答打分（1–10 分）：正确性、推理质量和表达清晰度。请逐条说明评分理由，最后给出总分。\n\n问题：{question}\n\n回答：{answer}",
    "Evalúa la siguiente respuesta del 1 al 10 según su corrección, la calidad del razonamiento y la claridad. Justifica cada criterio paso a paso y termina con la puntuación total.\n\nPregunta: {question}\n\nRespuesta: {answer}",
    "Оцени следующий ответ по шкале от 1 до 10 по критериям: правильность, качество рассуждений и ясность изложения. Обоснуй оценку по каждому критерию шаг за шагом, а затем укажи итоговый балл.\n\nВопрос: {question}\n\nОтвет: {answer}",
    "Bewerte die folgende Antwort auf einer Skala von 1 bis 10 nach Richtigkeit, Qualität der Begründung und Verständlichkeit. Begründe jedes Kriterium Schritt für Schritt und nenne zum Schluss die Gesamtpunktzahl.\n\nFrage: {question}\n\nAntwort: {answer}",
];

/// Short follow-ups real users send after an answer.
pub(super) const FOLLOW_UPS: &[&str] = &[
    "Can you make it shorter?",
    "Why?",
    "Show the steps.",
    "Explain step by step.",
    "Try again.",
    "In Spanish, please.",
    "Can you give me an example?",
    "Make it more formal.",
    "Make it sound friendlier.",
    "Can you explain that more simply?",
    "I don't understand the last part.",
    "Are you sure?",
    "That's not right, can you check again?",
    "Can you put that in a table?",
    "Give me three more options.",
    "Continue.",
    "go on",
    "Can you add comments to the code?",
    "Now write some tests for it.",
    "Summarise that in one sentence.",
    "Which one would you recommend?",
    "Use bullet points instead.",
    "What are the downsides?",
    "How long would that take?",
    "Is there a cheaper option?",
    "Translate it into French.",
    "Rewrite it for a ten-year-old.",
    "Where can I read more about this?",
    "What if I only have 30 minutes?",
    "Expand on point 2.",
    "Make the tone more casual.",
    "Fix the grammar but keep the meaning.",
    "Can you keep it under 100 words?",
    "OK, and then what?",
    "Why does that work?",
    "Can you double-check the maths?",
    "Just give me the final answer.",
    "Perfect, thanks!",
    "Add a subject line.",
    "What's the difference between the two?",
    "hmm that didn't work, I get an error",
    "more detail pls",
    "and in German?",
    "Can you make it rhyme?",
    "Thanks. One more question about that:",
];

/// System prompts of app backends that call the model through the API.
pub(super) const SYSTEM_PROMPTS: &[&str] = &[
    "You are a friendly support assistant for Brightline Internet. Help customers with billing, outages and plan changes. Never promise refunds; offer to open a ticket instead.",
    "You are the writing assistant inside a note-taking app. Improve the user's text when asked, keep their voice, and never add facts they did not provide.",
    "You are a recipe assistant for a grocery delivery service. Suggest recipes that use products from the store, list quantities in metric units, and mention common allergens.",
    "You are a travel planning assistant. Build day-by-day itineraries, keep travel times realistic, and remind users to check visa and entry requirements themselves.",
    "You are a coding assistant embedded in an IDE. Answer concisely, prefer code over prose, and follow the language and style of the user's open file.",
    "You are a tutor for secondary-school mathematics. Guide students with hints and questions; do not hand over complete solutions to homework unless the student asks to check their own work.",
    "You summarise customer reviews for an online shop. Produce a neutral summary of pros and cons in at most five bullet points. Do not invent details.",
    "You are an HR policy assistant for Northwind Logistics. Answer questions using the employee handbook excerpts provided. If the handbook does not cover a question, say so and suggest contacting HR.",
    "You translate user messages between English and Spanish for a customer service chat. Translate faithfully and keep names, numbers and product codes unchanged.",
    "You are a fitness coaching assistant. Suggest workouts suited to the user's stated level and equipment. Do not give medical advice; suggest seeing a professional for pain or injury.",
    "You are a legal information assistant for tenants. Explain general rights in plain language, say clearly that this is not legal advice, and point to local housing authorities.",
    "You extract structured data from invoices. Return JSON with the fields vendor, date, currency, total and line_items. Use null for anything missing. Output JSON only.",
    "You are a children's storytelling assistant. Write gentle, age-appropriate stories for ages 4 to 8, about 300 words, with a positive ending.",
    "You are the assistant of a personal finance app. Explain budgeting concepts and categorise transactions. Do not recommend specific stocks or funds.",
    "You are a meeting assistant. Turn the transcript you are given into a summary with decisions, action items (with owners) and open questions.",
    "You are a customer support bot for Pixelframe, a photo editing app. Answer questions about features, subscriptions and export formats. Keep answers under 120 words.",
    "You are a language-learning partner. Chat with the user in simple French, correct their mistakes gently at the end of each reply, and keep the conversation going with a question.",
    "You classify incoming support emails into one of: billing, technical, account, feedback, other. Reply with the label only.",
    "You are an assistant for a real-estate agency. Write listing descriptions from the facts provided. Be accurate and avoid exaggeration.",
    "You are a helpful general-purpose assistant for employees of Acme Corp. Be concise and professional. Do not share confidential information about other employees.",
    "You help hospital administrative staff draft patient appointment letters. Use a clear, polite tone and never include diagnoses in the letter.",
    "You are a research assistant for a university library. Help users find search terms and sources, and explain how to cite them in APA style.",
];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::corpus::text::slot_names;

    #[test]
    fn extraction_templates_have_exactly_one_question_slot() {
        for template in EXTRACTION_TEMPLATES {
            assert_eq!(slot_names(template), vec!["question"], "{template}");
        }
    }

    #[test]
    fn extraction_templates_cover_many_languages() {
        let english = EXTRACTION_TEMPLATES.iter().filter(|t| t.is_ascii()).count();
        assert!(english >= 15, "{english} english templates");
        // One marker word per language: Chinese, Spanish, Russian, French, German, Japanese,
        // Korean, Portuguese, Arabic.
        let markers = [
            "问题",
            "Pregunta",
            "Вопрос",
            "Question :",
            "Frage",
            "質問",
            "질문",
            "Pergunta",
            "السؤال",
        ];
        for marker in markers {
            assert!(
                EXTRACTION_TEMPLATES.iter().any(|t| t.contains(marker)),
                "no template containing {marker}"
            );
        }
    }

    #[test]
    fn rubric_templates_have_question_and_answer_slots() {
        assert!(RUBRIC_TEMPLATES.len() >= 12);
        for template in RUBRIC_TEMPLATES {
            assert_eq!(
                slot_names(template),
                vec!["question", "answer"],
                "{template}"
            );
        }
    }

    #[test]
    fn authored_lists_are_large_enough() {
        assert!(FOLLOW_UPS.len() >= 40);
        assert!(SYSTEM_PROMPTS.len() >= 20);
    }
}
