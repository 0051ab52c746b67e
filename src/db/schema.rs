// Written in the SQL types both backends share (see DESIGN.md §3): UUIDs and JSON as Text,
// UTC times as Timestamp, amounts as BigInt atoms.

diesel::table! {
    users (id) {
        id -> Text,
        external_ref -> Text,
        email_encrypted -> Text,
        residence_jurisdiction -> Text,
        preferred_language -> Text,
        date_of_birth_encrypted -> Nullable<Text>,
        address_encrypted -> Nullable<Text>,
        created_at -> Timestamp,
    }
}

diesel::table! {
    api_tokens (id) {
        id -> Text,
        name -> Text,
        role -> Text,
        jurisdiction -> Nullable<Text>,
        user_id -> Nullable<Text>,
        token_hash -> Text,
        created_at -> Timestamp,
        created_by -> Text,
        revoked_at -> Nullable<Timestamp>,
        revoked_by -> Nullable<Text>,
        revoke_reason -> Nullable<Text>,
    }
}

diesel::table! {
    audit_log (seq) {
        seq -> BigInt,
        occurred_at -> Timestamp,
        actor_id -> Text,
        actor_name -> Text,
        actor_role -> Text,
        action -> Text,
        subject_type -> Text,
        subject_id -> Text,
        reason -> Nullable<Text>,
        request_id -> Nullable<Text>,
        details -> Text,
        prev_hash -> Text,
        hash -> Text,
    }
}

diesel::table! {
    chain_heads (name) {
        name -> Text,
        seq -> BigInt,
        hash -> Text,
    }
}

diesel::table! {
    idempotency_keys (scope, idempotency_key) {
        scope -> Text,
        idempotency_key -> Text,
        request_hash -> Text,
        status_code -> Integer,
        response_body -> Text,
        created_at -> Timestamp,
    }
}

diesel::table! {
    assets (code) {
        code -> Text,
        scale -> Integer,
        kind -> Text,
    }
}

diesel::table! {
    ledger_entries (seq) {
        seq -> BigInt,
        transaction_id -> Text,
        kind -> Text,
        asset -> Text,
        amount -> BigInt,
        debit_account -> Text,
        credit_account -> Text,
        user_id -> Nullable<Text>,
        occurred_at -> Timestamp,
        recorded_at -> Timestamp,
        source -> Nullable<Text>,
        external_id -> Nullable<Text>,
        order_id -> Nullable<Text>,
        facility_id -> Nullable<Text>,
        valuation -> Nullable<Text>,
        fmv_usd -> Nullable<Text>,
        usd_price -> Nullable<Text>,
        price_at -> Nullable<Timestamp>,
        reason -> Nullable<Text>,
        actor_id -> Text,
        reverses_seq -> Nullable<BigInt>,
        prev_hash -> Text,
        hash -> Text,
    }
}

diesel::table! {
    balances (account, asset) {
        account -> Text,
        asset -> Text,
        atoms -> BigInt,
    }
}

diesel::table! {
    rates (base, quote, as_of) {
        base -> Text,
        quote -> Text,
        as_of -> Timestamp,
        rate -> Text,
        source -> Text,
        recorded_at -> Timestamp,
    }
}

diesel::table! {
    list_versions (id) {
        id -> Text,
        source -> Text,
        version -> BigInt,
        checksum -> Text,
        entries -> BigInt,
        added -> BigInt,
        changed -> BigInt,
        removed -> BigInt,
        loaded_at -> Timestamp,
        loaded_by -> Text,
    }
}

diesel::table! {
    list_entries (source, entry_id, first_version) {
        source -> Text,
        entry_id -> Text,
        first_version -> BigInt,
        removed_in -> Nullable<BigInt>,
        content_hash -> Text,
        data -> Text,
    }
}

diesel::table! {
    list_changes (source, version, entry_id) {
        source -> Text,
        version -> BigInt,
        entry_id -> Text,
        change -> Text,
    }
}

diesel::table! {
    screenings (id) {
        id -> Text,
        subject_kind -> Text,
        subject_ref -> Nullable<Text>,
        jurisdiction -> Nullable<Text>,
        query -> Text,
        threshold -> Text,
        four_eyes_score -> Text,
        hit_count -> BigInt,
        trigger -> Text,
        screened_at -> Timestamp,
        screened_by -> Text,
    }
}

diesel::table! {
    screening_hits (id) {
        id -> Text,
        screening_id -> Text,
        source -> Text,
        entry_id -> Text,
        entry_version -> Text,
        score -> Text,
        explanation -> Text,
        status -> Text,
        suppressed_by -> Nullable<Text>,
        created_at -> Timestamp,
    }
}

diesel::table! {
    hit_reviews (id) {
        id -> Text,
        hit_id -> Text,
        action -> Text,
        reason -> Text,
        actor_id -> Text,
        actor_role -> Text,
        at -> Timestamp,
    }
}

diesel::table! {
    hit_dismissals (subject_ref, source, entry_id, entry_version) {
        subject_ref -> Text,
        source -> Text,
        entry_id -> Text,
        entry_version -> Text,
        hit_id -> Text,
        dismissed_at -> Timestamp,
    }
}

diesel::table! {
    screening_subjects (subject_ref) {
        subject_ref -> Text,
        subject_kind -> Text,
        jurisdiction -> Nullable<Text>,
        query -> Text,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    screening_jobs (id) {
        id -> Text,
        reason -> Text,
        requested_by -> Text,
        matcher_config -> Text,
        status -> Text,
        subjects -> BigInt,
        entries -> BigInt,
        done -> BigInt,
        new_hits -> BigInt,
        last_subject_ref -> Nullable<Text>,
        error -> Nullable<Text>,
        created_at -> Timestamp,
        started_at -> Nullable<Timestamp>,
        heartbeat_at -> Nullable<Timestamp>,
        finished_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    kyc_applications (id) {
        id -> Text,
        user_id -> Text,
        jurisdiction -> Text,
        kind -> Text,
        target_tier -> Integer,
        status -> Text,
        personal_data_encrypted -> Text,
        pep_declared -> Bool,
        screening_ids -> Text,
        risk_level -> Text,
        risk_factors -> Text,
        priority -> Integer,
        submitted_at -> Timestamp,
        due_at -> Timestamp,
        submitted_by -> Text,
        based_on -> Nullable<Text>,
        assignee_id -> Nullable<Text>,
        assignee_name -> Nullable<Text>,
        claim_expires_at -> Nullable<Timestamp>,
        first_approver_id -> Nullable<Text>,
        first_approver_name -> Nullable<Text>,
        first_approved_at -> Nullable<Timestamp>,
        second_approver_id -> Nullable<Text>,
        second_approver_name -> Nullable<Text>,
        requested_items -> Nullable<Text>,
        decision_code -> Nullable<Text>,
        decision_text -> Nullable<Text>,
        decided_at -> Nullable<Timestamp>,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    kyc_documents (id) {
        id -> Text,
        application_id -> Text,
        kind -> Text,
        file_name -> Text,
        content_type -> Text,
        size_bytes -> BigInt,
        sha256 -> Text,
        content_encrypted -> Binary,
        uploaded_at -> Timestamp,
    }
}

diesel::table! {
    kyc_profiles (user_id) {
        user_id -> Text,
        jurisdiction -> Text,
        approved_tier -> Integer,
        approved_application_id -> Text,
        risk_level -> Text,
        pep -> Bool,
        approved_at -> Timestamp,
        next_review_at -> Timestamp,
        review_lapsed_at -> Nullable<Timestamp>,
        document_expires_on -> Nullable<Date>,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    email_outbox (id) {
        id -> Text,
        template -> Text,
        language -> Text,
        recipient_encrypted -> Text,
        subject -> Text,
        body_encrypted -> Text,
        related_type -> Text,
        related_id -> Text,
        status -> Text,
        attempts -> Integer,
        next_attempt_at -> Timestamp,
        locked_until -> Nullable<Timestamp>,
        last_error -> Nullable<Text>,
        created_at -> Timestamp,
        sent_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    scheduled_runs (job, run_date) {
        job -> Text,
        run_date -> Date,
        started_at -> Timestamp,
        finished_at -> Nullable<Timestamp>,
        summary -> Nullable<Text>,
    }
}

diesel::table! {
    console_sessions (id_hash) {
        id_hash -> Text,
        token_id -> Text,
        csrf_token -> Text,
        created_at -> Timestamp,
        expires_at -> Timestamp,
        ended_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    withdrawals (id) {
        id -> Text,
        user_id -> Text,
        jurisdiction -> Text,
        asset -> Text,
        amount -> BigInt,
        network -> Text,
        address -> Text,
        decision -> Text,
        reasons -> Text,
        currency -> Text,
        amount_local -> Nullable<BigInt>,
        usd_price -> Nullable<Text>,
        fx_rate -> Nullable<Text>,
        price_at -> Nullable<Timestamp>,
        beneficiary_encrypted -> Nullable<Text>,
        hold_transaction_id -> Nullable<Text>,
        requested_at -> Timestamp,
        requested_by -> Text,
        status -> Text,
        first_reviewer -> Nullable<Text>,
        first_reviewed_at -> Nullable<Timestamp>,
        reviewed_by -> Nullable<Text>,
        reviewed_at -> Nullable<Timestamp>,
        review_reason -> Nullable<Text>,
        outcome_seq -> Nullable<BigInt>,
    }
}

diesel::table! {
    withdrawal_settlements (withdrawal_id) {
        withdrawal_id -> Text,
        outcome -> Text,
        tx_hash -> Nullable<Text>,
        failure_reason -> Nullable<Text>,
        ledger_seq -> Nullable<BigInt>,
        reported_by -> Text,
        reported_at -> Timestamp,
    }
}

diesel::table! {
    cases (id) {
        id -> Text,
        jurisdiction -> Text,
        user_id -> Text,
        title -> Text,
        status -> Text,
        outcome -> Nullable<Text>,
        opened_by -> Text,
        opened_at -> Timestamp,
        closed_by -> Nullable<Text>,
        closed_at -> Nullable<Timestamp>,
        closing_reason -> Nullable<Text>,
    }
}

diesel::table! {
    alerts (id) {
        id -> Text,
        user_id -> Text,
        jurisdiction -> Text,
        origin -> Text,
        rule_id -> Nullable<Text>,
        rule_version -> Nullable<Integer>,
        severity -> Text,
        action -> Text,
        withdrawal_id -> Nullable<Text>,
        screening_hit_id -> Nullable<Text>,
        message -> Text,
        details -> Text,
        detected_by -> Text,
        dedupe_key -> Text,
        status -> Text,
        case_id -> Nullable<Text>,
        created_at -> Timestamp,
    }
}

diesel::table! {
    case_notes (id) {
        id -> Text,
        case_id -> Text,
        kind -> Text,
        body -> Text,
        file_name -> Nullable<Text>,
        content_type -> Nullable<Text>,
        file_sha256 -> Nullable<Text>,
        file_encrypted -> Nullable<Binary>,
        author -> Text,
        created_at -> Timestamp,
    }
}

diesel::table! {
    withdrawal_addresses (id) {
        id -> Text,
        user_id -> Text,
        network -> Text,
        address -> Text,
        label -> Nullable<Text>,
        added_by -> Text,
        added_at -> Timestamp,
        usable_from -> Timestamp,
        approved_by -> Nullable<Text>,
        approved_at -> Nullable<Timestamp>,
        approval_reason -> Nullable<Text>,
        removed_by -> Nullable<Text>,
        removed_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    webhook_outbox (id) {
        id -> Text,
        event -> Text,
        subject_id -> Text,
        payload -> Text,
        status -> Text,
        attempts -> Integer,
        next_attempt_at -> Timestamp,
        locked_until -> Nullable<Timestamp>,
        last_error -> Nullable<Text>,
        created_at -> Timestamp,
        delivered_at -> Nullable<Timestamp>,
    }
}

diesel::joinable!(screening_hits -> screenings (screening_id));
diesel::joinable!(hit_reviews -> screening_hits (hit_id));
diesel::joinable!(api_tokens -> users (user_id));
diesel::joinable!(ledger_entries -> users (user_id));
diesel::joinable!(kyc_applications -> users (user_id));
diesel::joinable!(kyc_documents -> kyc_applications (application_id));
diesel::joinable!(kyc_profiles -> users (user_id));
diesel::joinable!(alerts -> cases (case_id));
diesel::joinable!(case_notes -> cases (case_id));
diesel::table! {
    emission_factors (id) {
        id -> Text,
        dataset -> Text,
        version -> Text,
        zone -> Text,
        year -> Integer,
        basis -> Text,
        g_per_kwh -> Text,
        source -> Text,
        imported_at -> Timestamp,
    }
}

diesel::table! {
    facilities (id) {
        id -> Text,
        name -> Text,
        country -> Text,
        market_zone -> Text,
        pue_permille -> Integer,
        created_at -> Timestamp,
    }
}

diesel::table! {
    facility_miners (facility_id, model) {
        facility_id -> Text,
        model -> Text,
        hashrate_mths -> BigInt,
        power_w -> BigInt,
        units -> Integer,
    }
}

diesel::table! {
    orders (id) {
        id -> Text,
        external_id -> Text,
        user_id -> Text,
        facility_id -> Text,
        market_zone -> Text,
        hashrate_mths -> BigInt,
        starts_at -> Timestamp,
        ends_at -> Timestamp,
        energy_wh -> BigInt,
        energy_source -> Text,
        fleet_power_w -> BigInt,
        fleet_hashrate_mths -> BigInt,
        pue_permille -> Integer,
        matched_wh -> BigInt,
        hourly_matched_wh -> BigInt,
        created_at -> Timestamp,
    }
}

diesel::table! {
    order_hours (order_id, hour_start) {
        order_id -> Text,
        hour_start -> Timestamp,
        consumption_wh -> BigInt,
        matched_wh -> BigInt,
    }
}

diesel::table! {
    certificates (id) {
        id -> Text,
        scheme -> Text,
        registry -> Text,
        serial -> Text,
        device_id -> Text,
        technology -> Text,
        market_zone -> Text,
        country -> Text,
        generation_start -> Timestamp,
        generation_end -> Timestamp,
        volume_wh -> BigInt,
        g_per_kwh -> Text,
        expires_at -> Nullable<Timestamp>,
        allocated_wh -> BigInt,
        retired_wh -> BigInt,
        status -> Text,
        supersedes -> Nullable<Text>,
        imported_by -> Text,
        imported_at -> Timestamp,
    }
}

diesel::table! {
    retirements (id) {
        id -> Text,
        user_id -> Text,
        beneficiary -> Text,
        period_start -> Timestamp,
        period_end -> Timestamp,
        registry_reference -> Text,
        retired_wh -> BigInt,
        retired_by -> Text,
        retired_at -> Timestamp,
    }
}

diesel::table! {
    allocations (id) {
        id -> Text,
        certificate_id -> Text,
        order_id -> Text,
        mode -> Text,
        hour_start -> Nullable<Timestamp>,
        wh -> BigInt,
        state -> Text,
        retirement_id -> Nullable<Text>,
        allocated_by -> Text,
        allocated_at -> Timestamp,
        released_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    certificate_events (seq) {
        seq -> BigInt,
        certificate_id -> Text,
        kind -> Text,
        wh -> BigInt,
        order_id -> Nullable<Text>,
        allocation_id -> Nullable<Text>,
        actor -> Text,
        reason -> Nullable<Text>,
        occurred_at -> Timestamp,
    }
}

diesel::joinable!(facility_miners -> facilities (facility_id));
diesel::joinable!(orders -> facilities (facility_id));
diesel::joinable!(allocations -> certificates (certificate_id));
diesel::joinable!(allocations -> orders (order_id));

diesel::table! {
    reports (id) {
        id -> Text,
        kind -> Text,
        jurisdiction -> Nullable<Text>,
        period_label -> Text,
        period_start -> Timestamp,
        period_end -> Timestamp,
        language -> Text,
        title -> Text,
        data_sha256 -> Text,
        key_id -> Text,
        generated_by -> Text,
        generated_at -> Timestamp,
    }
}

diesel::table! {
    report_files (report_id, name) {
        report_id -> Text,
        name -> Text,
        content_type -> Text,
        content -> Binary,
        sha256 -> Text,
        signature -> Text,
    }
}

diesel::table! {
    report_schedules (id) {
        id -> Text,
        kind -> Text,
        jurisdiction -> Text,
        recipients_encrypted -> Text,
        created_by -> Text,
        created_at -> Timestamp,
        disabled_by -> Nullable<Text>,
        disabled_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    scheduled_reports (schedule_id, period_label) {
        schedule_id -> Text,
        period_label -> Text,
        report_id -> Text,
    }
}

diesel::joinable!(report_files -> reports (report_id));

diesel::allow_tables_to_appear_in_same_query!(
    emission_factors,
    facilities,
    facility_miners,
    orders,
    order_hours,
    certificates,
    retirements,
    allocations,
    certificate_events,
    users,
    cases,
    alerts,
    case_notes,
    withdrawal_addresses,
    withdrawal_settlements,
    webhook_outbox,
    api_tokens,
    audit_log,
    chain_heads,
    idempotency_keys,
    assets,
    ledger_entries,
    balances,
    rates,
    list_versions,
    list_entries,
    list_changes,
    screenings,
    screening_hits,
    hit_reviews,
    hit_dismissals,
    screening_subjects,
    screening_jobs,
    kyc_applications,
    kyc_documents,
    kyc_profiles,
    email_outbox,
    scheduled_runs,
    console_sessions,
    withdrawals,
    reports,
    report_files,
    report_schedules,
    scheduled_reports
);
